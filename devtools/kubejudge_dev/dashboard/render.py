"""The dashboard's panels drawn from Prometheus range queries into one PNG, laid out on
Grafana's own grid (gridPos: 24 columns, rows of equal height)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubejudge_dev.dashboard.panels import (
    GRID_COLUMNS,
    Dashboard,
    Panel,
    builtins,
    legend,
    substitute,
)
from kubejudge_dev.dashboard.prometheus import Prometheus, Series

# Inches per grid column and per grid row: a 24-column row 16 in wide, an 8-row panel 2.6 in.
COLUMN_IN = 16 / GRID_COLUMNS
ROW_IN = 0.33
TITLE_IN = 0.5  # the figure's own title
PAD_LEFT_IN, PAD_RIGHT_IN, PAD_TOP_IN, PAD_BOTTOM_IN = 0.55, 0.15, 0.3, 0.35
UNIT_LABELS = {"s": "seconds", "reqps": "per second", "short": "", "percent": "%"}


@dataclass(frozen=True, slots=True)
class Window:
    start: float  # unix seconds
    end: float
    step_s: float

    @classmethod
    def covering(cls, start: float, end: float, *, points: int = 300) -> Window:
        """Grafana's $__interval: the range over the panel's points, at least a second."""
        return cls(start=start, end=end, step_s=max(1.0, round((end - start) / points)))


@dataclass(frozen=True, slots=True)
class Drawn:
    """One target's series, named as the panel's legend names them."""

    panel: Panel
    ref_id: str
    expr: str  # as sent, variables filled in
    series: tuple[tuple[str, Series], ...]


def query_panels(
    prometheus: Prometheus,
    dashboard: Dashboard,
    window: Window,
    *,
    selected: Mapping[str, str | Sequence[str]],
    scrape_interval_s: float,
) -> list[Drawn]:
    """Every target of every panel, run over the window as Grafana would run it."""
    built_in = builtins(
        step_s=window.step_s,
        scrape_interval_s=scrape_interval_s,
        range_s=window.end - window.start,
    )
    drawn = []
    for panel in dashboard.panels:
        for target in panel.targets:
            expr = substitute(target.expr, dashboard, selected, built_in)
            result = prometheus.query_range(
                expr, start=window.start, end=window.end, step_s=window.step_s
            )
            named = tuple(
                sorted(((legend(target.legend, s.labels), s) for s in result), key=lambda p: p[0])
            )
            drawn.append(Drawn(panel=panel, ref_id=target.ref_id, expr=expr, series=named))
    return drawn


def figures(drawn: Sequence[Drawn]) -> dict[str, dict[str, dict[str, float]]]:
    """panel title -> series name -> its min, max and last value: what each panel showed."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for item in drawn:
        shown = out.setdefault(item.panel.title, {})
        for name, series in item.series:
            if series.values:
                values = series.values
                shown[name] = {"min": min(values), "max": max(values), "last": values[-1]}
    return out


def grid_slots(dashboard: Dashboard) -> list[tuple[Panel, slice, slice]]:
    """Each panel's rows and columns on the grid (grid units)."""
    return [
        (p, slice(p.y, p.y + p.h), slice(p.x, min(p.x + p.w, GRID_COLUMNS)))
        for p in dashboard.panels
    ]


def draw(dashboard: Dashboard, drawn: Sequence[Drawn], window: Window, *, path: Path) -> None:
    import matplotlib  # only the picture needs it, and never a display

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = dashboard.rows
    width_in, height_in = GRID_COLUMNS * COLUMN_IN, rows * ROW_IN + TITLE_IN
    fig = plt.figure(figsize=(width_in, height_in))
    by_panel: dict[int, list[Drawn]] = {}
    for item in drawn:
        by_panel.setdefault(item.panel.id, []).append(item)
    for panel, rows_of, columns in grid_slots(dashboard):
        # The panel's cell, less room for its title above, its ticks below and its unit beside.
        left = columns.start * COLUMN_IN + PAD_LEFT_IN
        bottom = height_in - TITLE_IN - rows_of.stop * ROW_IN + PAD_BOTTOM_IN
        width = (columns.stop - columns.start) * COLUMN_IN - PAD_LEFT_IN - PAD_RIGHT_IN
        height = (rows_of.stop - rows_of.start) * ROW_IN - PAD_BOTTOM_IN - PAD_TOP_IN
        axis = fig.add_axes(
            (left / width_in, bottom / height_in, width / width_in, height / height_in)
        )
        axis.set_title(panel.title, fontsize=9, loc="left")
        series = [s for item in by_panel.get(panel.id, []) for s in item.series if s[1].points]
        if not series:
            axis.text(0.5, 0.5, "No data", ha="center", va="center", transform=axis.transAxes)
            axis.set_xticks([])
            axis.set_yticks([])
        elif panel.kind == "stat":
            _stat(axis, series, window)
        else:
            _timeseries(axis, panel, series, window)
    start = datetime.fromtimestamp(window.start, UTC).strftime("%Y-%m-%d %H:%M:%S")
    fig.suptitle(
        f"{dashboard.title}: {start} UTC + {window.end - window.start:.0f} s, "
        f"one point per {window.step_s:.0f} s",
        fontsize=10,
    )
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _timeseries(axis: Any, panel: Panel, series: list[tuple[str, Series]], w: Window) -> None:
    for name, s in series:
        axis.plot([t - w.start for t, _ in s.points], s.values, label=name, linewidth=1.2)
    axis.set_xlim(0, w.end - w.start)
    axis.set_xlabel("seconds", fontsize=7, labelpad=1)
    axis.set_ylim(bottom=0)
    axis.set_ylabel(UNIT_LABELS.get(panel.unit, panel.unit), fontsize=8)
    axis.tick_params(labelsize=7)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=6, loc="best")


def _stat(axis: Any, series: list[tuple[str, Series]], w: Window) -> None:
    # Grafana's stat panel: lastNotNull of each series, large, over a faint sparkline.
    text = "   ".join(f"{name}: {s.values[-1]:.3g}" for name, s in series)
    for _, s in series:
        axis.fill_between([t - w.start for t, _ in s.points], s.values, alpha=0.15)
    axis.text(0.5, 0.5, text, ha="center", va="center", fontsize=16, transform=axis.transAxes)
    axis.set_xticks([])
    axis.set_yticks([])
