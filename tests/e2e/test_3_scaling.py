"""A burst from `kubejudge loadtest` through the api and gateway Services: the operator grows the
general pool from zero to several Running, Ready worker pods, every verdict reaches the WebSocket
clients, and the pool goes back to zero.

A Prometheus on loopback scrapes the pods all along, as the chart's monitors describe them
(tests/e2e/prometheus.py); after the burst every dashboard panel and every alert expression is
run against those real series, and the dashboard is drawn into the artifacts.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubejudge_dev import dashboard
from kubejudge_dev.dashboard import panels
from kubejudge_dev.dashboard.prometheus import Series
from kubejudge_dev.dashboard.render import Drawn, Window, query_panels
from support.polling import wait_until

from tests.e2e.conftest import NAMESPACE
from tests.e2e.judge import Judge, assert_one_final_verdict_each, scaling_record, start_burst
from tests.e2e.prometheus import Scraper
from tests.e2e.promql import grouping_labels, selectors

BURST = 24
USERS = 3
WORK_S = 3.0  # each submission sleeps this long in the sandbox: it holds a worker
POOL = "general"
RATE_WINDOW_S = 65  # the verdict panel's rate(...[1m]), and a few scrapes
# The dashboard as Grafana shows it with the namespace variable set to this judge's namespace.
SELECTED = {"namespace": [NAMESPACE]}


@dataclass(frozen=True)
class BurstRun:
    summary: dict[str, Any]
    report: Path
    started: float  # unix seconds
    ended: float  # the pool back at zero, its pods gone
    ready_seen: list[tuple[float, int]]  # (monotonic, Ready general worker pods)
    desired_seen: list[int]

    @property
    def peak(self) -> int:
        return max(count for _, count in self.ready_seen)


@pytest.fixture(scope="module")
def burst(judge: Judge, artifacts: Path, prometheus: Scraper) -> Iterator[BurstRun]:
    wait_until(lambda: judge.replicas(POOL) == 0, timeout=120, what="general pool at zero")
    # The scrapes of the idle judge, before the burst, are part of what the panels show.
    wait_until(lambda: len(prometheus.up_targets()) >= 3, timeout=30, what="api, gateway, operator")
    time.sleep(5)
    ready_seen: list[tuple[float, int]] = []
    desired_seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ready_seen.append((time.monotonic(), len(judge.ready_pods("worker", POOL))))
            desired_seen.append(judge.status()["pools"][POOL]["desired"])
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.time()
    try:
        run = start_burst(
            judge, out=artifacts / "scaling", count=BURST, work_s=WORK_S, users=USERS,
            prometheus=prometheus.url,
        )  # fmt: skip
        summary = run.finish()
        verdicts_done = time.time()
        # Back to zero once the scale-down delay has passed with nothing to do.
        wait_until(lambda: judge.replicas(POOL) == 0, timeout=180, what="pool back to 0")
        wait_until(lambda: not judge.pods("worker", POOL), timeout=120, what="pods gone")
    finally:
        done.set()
        watcher.join()
    # The rate panels' one-minute window has passed the last verdict (so the picture shows
    # them fall back to zero), and the last scrapes and rule evaluations have landed.
    time.sleep(max(3 * prometheus.interval_s, verdicts_done + RATE_WINDOW_S - time.time()))
    yield BurstRun(
        summary=summary, report=run.report, started=started, ended=time.time(),
        ready_seen=ready_seen, desired_seen=desired_seen,
    )  # fmt: skip


def test_a_burst_grows_the_general_pool_from_zero_and_it_returns_to_zero(
    judge: Judge, burst: BurstRun
) -> None:
    summary = burst.summary
    assert_one_final_verdict_each(summary)
    assert summary["accepted"] == BURST and summary["errors"]["total"] == 0, summary
    assert summary["statuses"] == {"3": BURST}, summary
    peak = burst.peak
    assert peak >= 2, f"at most {peak} general worker pod(s) were Ready"
    assert max(burst.desired_seen) >= peak and burst.desired_seen[-1] == 0, burst.desired_seen
    # The report (and its plot) saw the same pods Ready, beside desired and current, and the
    # backlog of the judge's own pools.
    assert summary["peak_ready_workers"] >= peak, summary
    assert summary["peak_backlog"] >= BURST * 0.75, summary
    # Every page's pool view shows what the operator decides, poll by poll.
    record = wait_until(lambda: scaling_record(judge.redis_url, POOL), what="decision")
    assert record.desired == 0 and record.reason, record
    plot = burst.report / "timeline.png"
    assert plot.stat().st_size > 10_000
    # Given --prometheus, the report also holds the dashboard over the load.
    assert Path(summary["dashboard"]["picture"]).stat().st_size > 50_000, summary["dashboard"]
    assert summary["dashboard"]["figures"]["Backlog per pool"], summary["dashboard"]
    first_ready = next(t for t, count in burst.ready_seen if count >= 1) - burst.ready_seen[0][0]
    print(f"first general worker Ready {first_ready:.1f} s after the burst began; peak {peak}")


# ------------------------------------------------------------------ the dashboard and alerts


def window(burst: BurstRun) -> Window:
    # From a little before the burst (the idle judge) to after the pool was gone, a point a second.
    return Window(start=burst.started - 10, end=burst.ended, step_s=1.0)


@pytest.fixture(scope="module")
def drawn(burst: BurstRun, prometheus: Scraper) -> dict[str, list[Drawn]]:
    """Every panel's queries over the burst, by panel title."""
    board = panels.load()
    out: dict[str, list[Drawn]] = {}
    for item in query_panels(
        prometheus.api, board, window(burst),
        selected=SELECTED, scrape_interval_s=prometheus.interval_s,
    ):  # fmt: skip
        out.setdefault(item.panel.title, []).append(item)
    return out


def only(drawn: dict[str, list[Drawn]], title: str, ref_id: str = "A") -> dict[str, Series]:
    (item,) = [d for d in drawn[title] if d.ref_id == ref_id]
    return dict(item.series)


def test_prometheus_scraped_every_part_as_the_monitors_describe_them(
    burst: BurstRun, prometheus: Scraper
) -> None:
    # Worker pods are found as they come: every pod that was Ready at the peak was scraped.
    span = f"{math.ceil(burst.ended - burst.started + 10)}s"
    scraped = prometheus.api.query(
        f'count by (container) (max_over_time(up{{namespace="{NAMESPACE}"}}[{span}]) == 1)',
        at=burst.ended,
    )
    per_container = {s.labels["container"]: s.values[-1] for s in scraped}
    assert per_container.get("worker", 0) >= burst.peak, per_container
    assert per_container.get("api", 0) >= 1 and per_container.get("gateway", 0) >= 1, scraped
    (operator,) = prometheus.api.query('up{job="kubejudge-operator-metrics"}', at=burst.ended)
    assert operator.values == [1.0], operator
    assert operator.labels["service"] == "kubejudge-operator-metrics", operator.labels


def test_every_panel_query_returns_data_over_the_burst(drawn: dict[str, list[Drawn]]) -> None:
    board = panels.load()
    assert set(drawn) == {p.title for p in board.panels}
    empty = [
        f"{title} {item.ref_id}: {item.expr}"
        for title, items in drawn.items()
        for item in items
        if not any(s.points for _, s in item.series)
    ]
    assert empty == [], "panels Grafana would show as No data"


def test_the_namespace_variable_offers_this_judges_namespace(prometheus: Scraper) -> None:
    raw = json.loads(panels.DASHBOARD.read_text())
    (variable,) = [v for v in raw["templating"]["list"] if v["name"] == "namespace"]
    metric, label = re.fullmatch(
        r"label_values\((\w+),\s*(\w+)\)", variable["query"]["query"]
    ).groups()
    values = prometheus.api.get(f"/api/v1/label/{label}/values", {"match[]": metric})
    assert NAMESPACE in values, values


def test_the_panels_figures_agree_with_the_burst(
    drawn: dict[str, list[Drawn]], burst: BurstRun, prometheus: Scraper
) -> None:
    backlog = only(drawn, "Backlog per pool")
    (pool_backlog,) = [s for name, s in backlog.items() if name.endswith(f" {POOL}")]
    assert max(pool_backlog.values) >= BURST * 0.75, pool_backlog.values
    assert pool_backlog.values[-1] == 0, pool_backlog.values

    desired = only(drawn, "Desired vs current workers", "A")
    current = only(drawn, "Desired vs current workers", "B")
    (desired_pool,) = [s for name, s in desired.items() if name.endswith(f" {POOL}")]
    (current_pool,) = [s for name, s in current.items() if name.endswith(f" {POOL}")]
    assert max(desired_pool.values) == max(burst.desired_seen), desired_pool.values
    assert max(current_pool.values) >= burst.peak, (current_pool.values, burst.peak)
    assert desired_pool.values[-1] == 0 and current_pool.values[-1] == 0

    busy = only(drawn, "Busy workers")
    (busy_pool,) = [s for name, s in busy.items() if name.endswith(f" {POOL}")]
    assert 1 <= max(busy_pool.values) <= max(desired_pool.values), busy_pool.values

    # Verdicts by status: every submission of the burst, all Accepted. The panel's own rate
    # summed over time, and the exact count its series hold.
    verdicts = only(drawn, "Verdicts per second by status")
    judged = {status for status, series in verdicts.items() if max(series.values) > 0}
    assert judged == {"ACCEPTED"}, verdicts.keys()  # the other statuses are there, at zero
    integral = sum(verdicts["ACCEPTED"].values) * window(burst).step_s
    assert abs(integral - BURST) <= 0.1 * BURST, integral
    (item,) = drawn["Verdicts per second by status"]
    (selector,) = selectors(item.expr)
    span = f"{math.ceil(burst.ended - burst.started + 10)}s"
    counted = {
        series.labels["status"]: round(series.values[-1])
        for series in prometheus.api.query(
            f"sum by (status) (increase({selector}[{span}]))", at=burst.ended
        )
    }
    assert counted["ACCEPTED"] == BURST, counted
    assert sum(counted.values()) == BURST, counted

    p50 = only(drawn, "Submit to verdict", "A")["p50"]
    assert max(p50.values) >= WORK_S, p50.values  # each submission sleeps WORK_S seconds
    delivery = only(drawn, "Verdict-to-delivery latency", "C")["p99"]
    assert 0 < max(delivery.values) < 5, delivery.values
    connections = only(drawn, "Gateway connections")  # one series per gateway pod
    totals: dict[float, float] = {}
    for series in connections.values():
        for t, v in series.points:
            totals[t] = totals.get(t, 0) + v
    assert max(totals.values()) >= USERS, connections  # every user's socket, on some gateway

    dead = only(drawn, "Dead letters (last hour)")
    assert dead[POOL].values[-1] == 0, dead  # zero, not "No data"

    scalings = only(drawn, "Scaling decisions")
    assert max(scalings[f"{POOL} up"].values) > 0, scalings.keys()
    assert max(scalings[f"{POOL} down"].values) > 0, scalings.keys()

    oldest = only(drawn, "Oldest waiting submission per pool")
    (oldest_pool,) = [s for name, s in oldest.items() if name.endswith(f" {POOL}")]
    assert max(oldest_pool.values) >= 1, oldest_pool.values  # it waited for pods from zero


def expressions(prometheus: Scraper) -> dict[str, str]:
    """Every alert's expression and every panel's query (variables filled in), by name."""
    out = {
        f"alert {rule['alert']}": rule["expr"]
        for group in prometheus.rule_groups
        for rule in group["rules"]
    }
    board = panels.load()
    built_in = panels.builtins(step_s=1, scrape_interval_s=prometheus.interval_s, range_s=60)
    for panel in board.panels:
        for target in panel.targets:
            expr = panels.substitute(target.expr, board, SELECTED, built_in)
            out[f"panel {panel.title} {target.ref_id}"] = expr
    return out


def test_every_selector_and_grouping_label_exists_on_the_real_series(
    burst: BurstRun, prometheus: Scraper
) -> None:
    """A wrong metric name, label matcher, or a by/on label the series lack fails here."""
    span = f"{math.ceil(burst.ended - burst.started + 10)}s"
    wrong = []
    for name, expr in expressions(prometheus).items():
        labels = grouping_labels(expr) - {"le"}
        assert selectors(expr), f"{name}: no selector found in {expr}"
        for selector in selectors(expr):
            found = prometheus.api.query(f"last_over_time({selector}[{span}])", at=burst.ended)
            if not found:
                wrong.append(f"{name}: {selector} matches no series")
            for series in found:
                missing = labels - set(series.labels)
                if missing:
                    wrong.append(f"{name}: {selector} has no {sorted(missing)}: {series.labels}")
                    break
    assert wrong == []


def test_every_alert_rule_evaluates_cleanly_and_none_fires(prometheus: Scraper) -> None:
    groups = prometheus.api.get("/api/v1/rules")["groups"]
    rules = {r["name"]: r for g in groups for r in g["rules"]}
    expected = {r["alert"] for g in prometheus.rule_groups for r in g["rules"]}
    assert set(rules) == expected
    for name, rule in rules.items():
        assert rule["health"] == "ok", (name, rule.get("lastError"))
        # Healthy judge, finished burst: nothing is pending or firing.
        assert rule["state"] == "inactive", (name, rule["alerts"])


def test_the_dashboard_picture_is_drawn_from_the_burst(
    burst: BurstRun, prometheus: Scraper, artifacts: Path
) -> None:
    w = window(burst)
    picture = dashboard.render(
        prometheus.api, artifacts / "dashboard", w,
        selected=SELECTED, scrape_interval_s=prometheus.interval_s,
    )  # fmt: skip
    assert picture.path.stat().st_size > 50_000
    assert set(picture.figures) == {p.title for p in panels.load().panels}
    assert all(picture.figures.values()), picture.figures  # every panel drew a series
    shown = {
        title: {n: f["max"] for n, f in series.items()} for title, series in picture.figures.items()
    }
    print(f"dashboard {picture.path}: maxima {shown}")
