"""`kubejudge dashboard`: the chart's Grafana dashboard drawn from a Prometheus, without Grafana.

    kubejudge dashboard --prometheus http://127.0.0.1:9090 --out dashboard --since 15m

Reads the panels from charts/kubejudge/dashboards/kubejudge-overview.json (the one definition),
runs each panel's queries over the window with the template variables filled in as Grafana
fills them, and writes `dashboard.png` (the panels on Grafana's grid) and `dashboard.json` (each
query as sent, and the min, max and last value of every series it returned).
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubejudge_dev.dashboard import panels
from kubejudge_dev.dashboard.prometheus import Prometheus, QueryError
from kubejudge_dev.dashboard.render import Window, draw, figures, query_panels

PICTURE = "dashboard.png"
DATA = "dashboard.json"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument("--out", type=Path, default=Path("dashboard"), help="output folder")
    parser.add_argument("--since", default=None, metavar="DURATION", help="e.g. 15m (default 1h)")
    parser.add_argument("--start", default=None, help="unix seconds or ISO 8601 (with --end)")
    parser.add_argument("--end", default=None, help="unix seconds or ISO 8601 (default now)")
    parser.add_argument(
        "--namespace", action="append", default=None,
        help="the $namespace variable (repeatable; default All)",
    )  # fmt: skip
    parser.add_argument(
        "--scrape-interval", default="15s", metavar="DURATION",
        help="the data source's scrape interval, for $__rate_interval",
    )  # fmt: skip
    parser.add_argument(
        "--dashboard", type=Path, default=panels.DASHBOARD, help="a Grafana dashboard JSON file"
    )


@dataclass(frozen=True, slots=True)
class Picture:
    path: Path
    figures: dict[str, dict[str, dict[str, float]]]


def run(args: argparse.Namespace) -> int:
    try:
        window = window_of(since=args.since, start=args.start, end=args.end, now=time.time())
        scrape_interval_s = seconds(args.scrape_interval)
    except ValueError as error:
        print(f"kubejudge dashboard: {error}", file=sys.stderr)
        return 2
    selected = {"namespace": args.namespace or panels.ALL}
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per query otherwise
    try:
        with Prometheus(args.prometheus) as prometheus:
            picture = render(
                prometheus, args.out, window,
                selected=selected, scrape_interval_s=scrape_interval_s, dashboard=args.dashboard,
            )  # fmt: skip
    except (QueryError, panels.TemplateError, OSError) as error:
        print(f"kubejudge dashboard: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"picture": str(picture.path), "figures": picture.figures}, sort_keys=True))
    return 0


def render(
    prometheus: Prometheus,
    out: Path,
    window: Window,
    *,
    selected: Mapping[str, str | Sequence[str]] | None = None,
    scrape_interval_s: float = 15.0,
    dashboard: Path = panels.DASHBOARD,
) -> Picture:
    """Query every panel over `window` and write the picture and its data into `out`."""
    board = panels.load(dashboard)
    drawn = query_panels(
        prometheus, board, window,
        selected=selected or {"namespace": panels.ALL}, scrape_interval_s=scrape_interval_s,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    draw(board, drawn, window, path=out / PICTURE)
    shown = figures(drawn)
    data: dict[str, Any] = {
        "window": {"start": window.start, "end": window.end, "step_s": window.step_s},
        "queries": {f"{d.panel.title} {d.ref_id}": d.expr for d in drawn},
        "figures": shown,
    }
    (out / DATA).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return Picture(path=out / PICTURE, figures=shown)


def seconds(text: str) -> float:
    """A Prometheus-style duration with one unit (90s, 15m, 2h, 1d) in seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration such as 90s, 15m or 2h, got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def instant(text: str) -> float:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone)."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"expected unix seconds or an ISO 8601 time, got {text!r}") from error
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def window_of(*, since: str | None, start: str | None, end: str | None, now: float) -> Window:
    if since is not None and start is not None:
        raise ValueError("give --since or --start, not both")
    finish = instant(end) if end is not None else now
    begin = instant(start) if start is not None else finish - seconds(since or "1h")
    if begin >= finish:
        raise ValueError("expected the window's start before its end")
    return Window.covering(begin, finish)
