"""The chart's Grafana dashboard as data: its panels and their PromQL, with the template
variables filled in the way Grafana fills them, so every reader of the dashboard (the picture,
the load test's report, the e2e checks) runs the queries the dashboard itself holds."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# An editable install (make install) runs this from the checkout, beside the chart.
DASHBOARD = (
    Path(__file__).resolve().parents[3] / "charts" / "kubejudge" / "dashboards"
    / "kubejudge-overview.json"
)  # fmt: skip
GRID_COLUMNS = 24  # Grafana's grid is 24 columns wide
# What Grafana's "All" means when a variable names no allValue: every value, which a regex
# matcher reads as anything.
ALL = "$__all"
# $var, ${var}, ${var:format} and the deprecated [[var]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")
# Characters the Prometheus data source escapes in a multi-value regex (Grafana's
# prometheusSpecialRegexEscape), so a value is matched literally.
_REGEX_SPECIAL = re.compile(r"([\\^$*+?.()|{}\[\]])")


class TemplateError(ValueError):
    """A query names a variable the dashboard does not define."""


@dataclass(frozen=True, slots=True)
class Target:
    ref_id: str
    expr: str
    legend: str


@dataclass(frozen=True, slots=True)
class Panel:
    id: int
    title: str
    kind: str  # Grafana's panel type: timeseries, stat
    unit: str
    x: int
    y: int
    w: int
    h: int
    targets: tuple[Target, ...]


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    multi: bool
    include_all: bool
    all_value: str | None


@dataclass(frozen=True, slots=True)
class Dashboard:
    title: str
    panels: tuple[Panel, ...]
    variables: Mapping[str, Variable]

    @property
    def rows(self) -> int:
        """Grid rows the panels fill."""
        return max((p.y + p.h for p in self.panels), default=0)


def load(path: Path = DASHBOARD) -> Dashboard:
    raw = json.loads(path.read_text())
    return Dashboard(
        title=raw["title"],
        panels=tuple(_panel(p) for p in raw["panels"]),
        variables={
            v["name"]: Variable(
                name=v["name"],
                multi=bool(v.get("multi")),
                include_all=bool(v.get("includeAll")),
                all_value=v.get("allValue"),
            )
            for v in raw.get("templating", {}).get("list", [])
        },
    )


def _panel(raw: Mapping[str, Any]) -> Panel:
    grid = raw["gridPos"]
    return Panel(
        id=int(raw["id"]),
        title=raw["title"],
        kind=raw["type"],
        unit=raw.get("fieldConfig", {}).get("defaults", {}).get("unit", "short"),
        x=grid["x"], y=grid["y"], w=grid["w"], h=grid["h"],
        targets=tuple(
            Target(ref_id=t["refId"], expr=t["expr"], legend=t.get("legendFormat", ""))
            for t in raw.get("targets", [])
        ),
    )  # fmt: skip


def duration(seconds: float) -> str:
    """A PromQL duration as Grafana writes its interval variables: whole seconds, at least 1."""
    return f"{max(1, round(seconds))}s"


def builtins(*, step_s: float, scrape_interval_s: float, range_s: float) -> dict[str, str]:
    """Grafana's own variables for a panel drawn with one point per `step_s`."""
    return {
        "__interval": duration(step_s),
        "__interval_ms": str(max(1, round(step_s * 1000))),
        # Grafana: max($__interval + scrape interval, 4 * scrape interval), so rate() always
        # spans at least two scrapes whatever the zoom.
        "__rate_interval": duration(max(step_s + scrape_interval_s, 4 * scrape_interval_s)),
        "__range": duration(range_s),
        "__range_s": str(max(1, round(range_s))),
    }


def substitute(
    expr: str,
    dashboard: Dashboard,
    selected: Mapping[str, str | Sequence[str]],
    built_in: Mapping[str, str],
) -> str:
    """`expr` with each variable replaced as Grafana's Prometheus data source does: "All" by
    the variable's allValue (or every value's regex), a multi-value choice by `(a|b)` with the
    values regex-escaped, a single value as it is."""

    def value(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g is not None)
        if name in built_in:
            return built_in[name]
        variable = dashboard.variables.get(name)
        if variable is None or name not in selected:
            raise TemplateError(f"the query names ${name}, which the dashboard does not define")
        chosen = selected[name]
        if chosen == ALL:
            return variable.all_value if variable.all_value is not None else ".*"
        if isinstance(chosen, str):
            return _escape(chosen) if variable.multi or variable.include_all else chosen
        escaped = [_escape(v) for v in chosen]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"

    return _VARIABLE.sub(value, expr)


def _escape(value: str) -> str:
    return _REGEX_SPECIAL.sub(r"\\\1", value)


def legend(fmt: str, labels: Mapping[str, str]) -> str:
    """A series' name as Grafana writes it: legendFormat's {{label}} filled in, or the series'
    labels when the panel sets no format."""
    if not fmt:
        return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt).strip()
