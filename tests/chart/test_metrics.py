"""Every metric a dashboard or alert names is one our services export.

The exported names are derived from the code itself: every prometheus_client metric constructed
in the api, worker, gateway and operator packages (and the shared library) is rebuilt in a
scratch registry, so the series names follow prometheus_client's own rules (a Counter `x` is
exposed as `x_total`, a Histogram as `x_bucket`, `x_sum`, `x_count`, ...).
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import prometheus_client
import pytest

from tests.chart.paths import ALL_FEATURES, CHART, REPO, Render

SOURCES = [
    REPO / "kubejudge",
    REPO / "images" / "api" / "kubejudge_api",
    REPO / "images" / "worker" / "kubejudge_worker",
    REPO / "images" / "gateway" / "kubejudge_gateway",
    REPO / "operator" / "kubejudge_operator",
]
METRIC_TYPES = ("Counter", "Gauge", "Histogram", "Summary", "Info", "Enum")
# Series Prometheus itself adds to every scrape target.
PROMETHEUS_BUILTINS = {"up"}
OUR_PREFIX = "kubejudge_"


def declared_metrics() -> dict[str, str]:
    """metric name -> prometheus_client type, for every metric constructed in our code."""
    found: dict[str, str] = {}
    for root in SOURCES:
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if not isinstance(node, ast.Call):
                    continue
                func = node.func
                kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
                if kind not in METRIC_TYPES:
                    continue
                name = node.args[0] if node.args else None
                if isinstance(name, ast.Constant) and isinstance(name.value, str):
                    found[name.value] = kind
    return found


def exported_series() -> set[str]:
    """The series names those metrics expose, by prometheus_client's own suffix rules."""
    series: set[str] = set()
    for name, kind in declared_metrics().items():
        registry = prometheus_client.CollectorRegistry()
        if kind == "Enum":
            metric = prometheus_client.Enum(name, "-", states=["a"], registry=registry)
        else:
            metric = getattr(prometheus_client, kind)(name, "-", registry=registry)
        if kind == "Info":
            metric.info({})
        for family in registry.collect():
            series.update(sample.name for sample in family.samples)
    return series


def dashboard_queries() -> list[tuple[str, str]]:
    queries = []
    for path in sorted((CHART / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in dashboard["templating"]["list"]:
            if isinstance(variable.get("query"), dict):  # a query variable's label_values(...)
                queries.append((f"{path.name}: ${variable['name']}", variable["query"]["query"]))
    return queries


def alert_queries(render: Render) -> list[tuple[str, str]]:
    (rule,) = [o for o in render(ALL_FEATURES) if o["kind"] == "PrometheusRule"]
    return [
        (f"alert {r['alert']}", r["expr"])
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    ]


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: ours by prefix, plus Prometheus's built-ins."""
    tokens = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))
    return {t for t in tokens if t.startswith(OUR_PREFIX)} | (tokens & PROMETHEUS_BUILTINS)


def test_the_code_declares_metrics_of_every_role() -> None:
    names = declared_metrics()
    for role in ("api", "worker", "gateway", "pool"):
        assert any(n.startswith(f"{OUR_PREFIX}{role}_") for n in names), f"no {role} metrics"


@pytest.mark.parametrize("source", ["dashboards", "alerts"])
def test_every_metric_named_is_exported(source: str, render: Render) -> None:
    queries = dashboard_queries() if source == "dashboards" else alert_queries(render)
    assert queries
    exported = exported_series() | PROMETHEUS_BUILTINS
    unknown: dict[str, Any] = {}
    for where, expr in queries:
        missing = metric_names(expr) - exported
        if missing:
            unknown[where] = sorted(missing)
        assert metric_names(expr), f"{where}: names no metric: {expr}"
    assert not unknown, f"metrics no service exports: {unknown}"


def test_the_issue_s_panels_are_all_there() -> None:
    titles = " / ".join(title for title, _ in dashboard_queries()).lower()
    for wanted in (
        "backlog per pool",
        "desired vs current workers",
        "busy workers",
        "verdicts per second by status",
        "submit to verdict",
        "verdict-to-delivery",
        "gateway connections",
        "dead letters",
    ):
        assert wanted in titles, wanted


def test_metric_names_reads_promql() -> None:
    expr = 'histogram_quantile(0.5, sum by (le) (rate(kubejudge_x_bucket{pool="a"}[5m]))) or up'
    assert metric_names(expr) == {"kubejudge_x_bucket", "up"}
