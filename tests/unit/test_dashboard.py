"""`kubejudge dashboard`'s pure parts: the chart's dashboard read as panels, template variables
filled in as Grafana fills them, the grid layout, and the time window."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubejudge_dev.dashboard import panels, seconds, window_of
from kubejudge_dev.dashboard.prometheus import Prometheus, QueryError, Series
from kubejudge_dev.dashboard.render import Drawn, Window, draw, figures, grid_slots


@pytest.fixture(scope="module")
def board() -> panels.Dashboard:
    return panels.load()


def test_the_chart_dashboard_loads_with_every_panel_placed_on_the_grid(
    board: panels.Dashboard,
) -> None:
    assert len(board.panels) == 10 and all(p.targets for p in board.panels)
    assert "namespace" in board.variables
    cells: set[tuple[int, int]] = set()
    for panel, rows, columns in grid_slots(board):
        assert 0 <= columns.start < columns.stop <= panels.GRID_COLUMNS, panel.title
        covered = {
            (r, c) for r in range(rows.start, rows.stop) for c in range(columns.start, columns.stop)
        }
        assert not covered & cells, f"{panel.title} overlaps another panel"
        cells |= covered
    assert board.rows == max(p.y + p.h for p in board.panels)


def test_namespace_is_filled_in_as_grafana_does(board: panels.Dashboard) -> None:
    expr = 'sum(kubejudge_pool_backlog{namespace=~"$namespace"})'
    fill = lambda chosen: panels.substitute(expr, board, {"namespace": chosen}, {})  # noqa: E731
    assert fill(panels.ALL) == 'sum(kubejudge_pool_backlog{namespace=~".*"})'
    assert fill(["judges"]) == 'sum(kubejudge_pool_backlog{namespace=~"judges"})'
    assert fill(["a.b", "c"]) == r'sum(kubejudge_pool_backlog{namespace=~"(a\.b|c)"})'
    assert panels.substitute('x{n=~"${namespace}"}', board, {"namespace": "a"}, {}) == 'x{n=~"a"}'


def test_grafana_interval_variables() -> None:
    built_in = panels.builtins(step_s=2, scrape_interval_s=15, range_s=3600)
    assert built_in["__rate_interval"] == "60s"  # 4 scrapes, more than step + scrape
    assert built_in["__interval"] == "2s" and built_in["__range"] == "3600s"
    assert panels.builtins(step_s=60, scrape_interval_s=1, range_s=60)["__rate_interval"] == "61s"


def test_a_variable_the_dashboard_does_not_define_is_an_error(board: panels.Dashboard) -> None:
    with pytest.raises(panels.TemplateError, match=r"\$cluster"):
        panels.substitute('x{cluster="$cluster"}', board, {"namespace": panels.ALL}, {})


def test_every_panel_query_fills_in_completely(board: panels.Dashboard) -> None:
    built_in = panels.builtins(step_s=1, scrape_interval_s=1, range_s=60)
    for panel in board.panels:
        for target in panel.targets:
            expr = panels.substitute(target.expr, board, {"namespace": panels.ALL}, built_in)
            assert "$" not in expr and "[[" not in expr, (panel.title, expr)


def test_legend_names_a_series_as_grafana_does() -> None:
    labels = {"namespace": "judges", "cluster": "judge", "pool": "general"}
    assert panels.legend("{{namespace}}/{{cluster}} {{ pool }}", labels) == "judges/judge general"
    assert panels.legend("", {"pool": "general"}) == '{pool="general"}'


def test_the_window_from_since_or_start_and_end() -> None:
    assert seconds("90s") == 90 and seconds("15m") == 900 and seconds("2h") == 7200
    with pytest.raises(ValueError, match="duration"):
        seconds("15 minutes")
    w = window_of(since="10m", start=None, end=None, now=10_000)
    assert (w.start, w.end) == (9_400, 10_000) and w.step_s == 2
    w = window_of(since=None, start="2026-01-01T00:00:00", end="2026-01-01T01:00:00", now=0)
    assert w.end - w.start == 3600 and w.step_s == 12
    with pytest.raises(ValueError, match="before"):
        window_of(since=None, start="200", end="100", now=0)
    assert Window.covering(0, 30).step_s == 1


def test_every_panel_is_drawn_with_its_series_or_no_data(
    board: panels.Dashboard, tmp_path: Path
) -> None:
    window = Window(start=1000, end=1060, step_s=1)
    ramp = Series(labels={"pool": "general"}, points=[(1000 + t, float(t)) for t in range(61)])
    drawn = [
        Drawn(
            panel=p, ref_id=t.ref_id, expr=t.expr, series=(("general", ramp),) if p.id != 7 else ()
        )
        for p in board.panels
        for t in p.targets
    ]
    draw(board, drawn, window, path=tmp_path / "dashboard.png")
    assert (tmp_path / "dashboard.png").stat().st_size > 50_000
    shown = figures(drawn)
    assert shown["Backlog per pool"] == {"general": {"min": 0.0, "max": 60.0, "last": 60.0}}
    assert shown["Gateway connections"] == {}  # drawn as No data


def test_an_unreachable_prometheus_is_a_query_error() -> None:
    """Callers (the load test's report, `kubejudge dashboard`) handle QueryError, not httpx's."""
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    prometheus = Prometheus("http://127.0.0.1:1", timeout_s=2)
    with pytest.raises(QueryError):
        prometheus.query_range("up", start=0, end=1, step_s=1)
