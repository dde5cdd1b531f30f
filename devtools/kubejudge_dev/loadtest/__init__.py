"""`kubejudge loadtest`: drive submissions at a fixed arrival rate (open loop) or in one burst,
take each verdict off the gateway's WebSocket, and write a report folder.

    kubejudge loadtest --api http://127.0.0.1:2358 --gateway ws://127.0.0.1:2359 \
        --burst 200 --redis-url redis://127.0.0.1:6379/0 --out loadtest-report

The report folder holds `summary.json` (throughput, submit-to-verdict and verdict-to-delivery
percentiles, errors, lost verdicts) and `timeline.png` (backlog, desired/current/live workers,
throughput and latency over time). With `--prometheus URL` it also holds the chart's dashboard
over the load (`dashboard/dashboard.png` and `.json`, as `kubejudge dashboard` draws it), and
the summary each panel's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from kubejudge.settings import Settings
from kubejudge.wellknown import API_PORT, GATEWAY_PORT
from kubejudge_dev import dashboard
from kubejudge_dev.dashboard.prometheus import Prometheus, QueryError
from kubejudge_dev.dashboard.render import Window
from kubejudge_dev.loadtest.driver import LoadError, LoadPlan, Target, run_load
from kubejudge_dev.loadtest.report import SUMMARY_FILE, write_report
from kubejudge_dev.loadtest.sampler import ClusterRef


def add_arguments(parser: argparse.ArgumentParser) -> None:
    load = parser.add_mutually_exclusive_group(required=True)
    load.add_argument("--burst", type=int, metavar="N", help="send N submissions at once")
    load.add_argument("--rate", type=float, metavar="PER_S", help="arrivals per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (with --rate)")
    parser.add_argument("--api", default=f"http://127.0.0.1:{API_PORT}", help="api base URL")
    parser.add_argument(
        "--gateway", default=f"ws://127.0.0.1:{GATEWAY_PORT}", help="gateway base URL"
    )
    parser.add_argument("--users", type=int, default=4, help="distinct users (one socket each)")
    parser.add_argument("--language-id", type=int, default=71, help="Judge0 language id")
    parser.add_argument(
        "--work-s", type=float, default=0.0, help="seconds each submission sleeps (Python only)"
    )
    parser.add_argument(
        "--auth",
        choices=("secret", "dev-endpoint"),
        default="secret",
        help="mint JWTs with KUBEJUDGE_JWT_SECRET, or ask the api's dev token endpoint",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds to wait for verdicts after sending"
    )
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections to the api")
    parser.add_argument(
        "--redis-url", default=None, help="sample backlog and live workers from this Redis"
    )
    parser.add_argument(
        "--judgecluster",
        default=None,
        metavar="NAMESPACE/NAME",
        help="sample desired and current workers from this JudgeCluster's status",
    )
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig for --judgecluster")
    parser.add_argument("--sample-interval", type=float, default=0.5, help="seconds")
    parser.add_argument(
        "--observe-s",
        type=float,
        default=10.0,
        help="keep sampling this long after the last verdict, to see the pool scale down",
    )
    parser.add_argument("--out", type=Path, default=Path("loadtest-report"), help="report folder")
    parser.add_argument(
        "--prometheus", default=None, metavar="URL",
        help="add the chart's dashboard panels over the load, from this Prometheus",
    )  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    plan = _plan(args)
    if isinstance(plan, str):
        print(f"kubejudge loadtest: {plan}", file=sys.stderr)
        return 2
    settings = Settings()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per submission otherwise
    target = Target(
        api_url=args.api.rstrip("/"),
        gateway_url=args.gateway.rstrip("/"),
        jwt_secret=settings.jwt_secret if args.auth == "secret" else None,
        connections=args.connections,
    )
    cluster = None
    if args.judgecluster:
        namespace, _, name = args.judgecluster.partition("/")
        cluster = ClusterRef(namespace=namespace, name=name, kubeconfig=args.kubeconfig)
    try:
        result = asyncio.run(
            run_load(
                plan=plan,
                target=target,
                redis_url=args.redis_url,
                pools=list(settings.pools),
                cluster=cluster,
                sample_interval_s=args.sample_interval,
                observe_s=args.observe_s,
                progress=not args.no_progress,
            )
        )
    except LoadError as error:
        print(f"kubejudge loadtest: {error}", file=sys.stderr)
        return 2
    summary = write_report(result, out=args.out)
    if args.prometheus:
        summary["dashboard"] = _dashboard(args, result.started_at_ms / 1000)
        (args.out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    print(json.dumps(summary, sort_keys=True))
    return 0 if summary["lost_verdicts"] == 0 and summary["errors"]["total"] == 0 else 1


def _dashboard(args: argparse.Namespace, started: float) -> dict[str, Any]:
    """The dashboard's panels from the load's start (and a little before) to now."""
    namespace = args.judgecluster.partition("/")[0] if args.judgecluster else dashboard.panels.ALL
    window = Window.covering(started - 10, time.time())
    try:
        with Prometheus(args.prometheus) as prometheus:
            picture = dashboard.render(
                prometheus, args.out / "dashboard", window, selected={"namespace": namespace}
            )
    except (QueryError, OSError) as error:  # the load's own report stands without it
        print(f"kubejudge loadtest: no dashboard: {error}", file=sys.stderr)
        return {"error": str(error)}
    return {"picture": str(picture.path), "figures": picture.figures}


def _plan(args: argparse.Namespace) -> LoadPlan | str:
    """The load to send, or what is wrong with the arguments."""
    if args.users < 1:
        return "expected --users of at least 1"
    if args.timeout <= 0 or args.sample_interval <= 0 or args.observe_s < 0:
        return "expected a positive --timeout and --sample-interval, and --observe-s >= 0"
    if args.work_s < 0 or args.work_s > 60:
        return "expected --work-s between 0 and 60"
    if args.burst is not None:
        if args.burst < 1:
            return "expected --burst of at least 1"
        return LoadPlan.burst(
            count=args.burst,
            users=args.users,
            language_id=args.language_id,
            work_s=args.work_s,
            timeout_s=args.timeout,
        )
    if args.rate <= 0 or args.duration <= 0:
        return "expected a positive --rate and --duration"
    return LoadPlan.open_loop(
        rate_per_s=args.rate,
        duration_s=args.duration,
        users=args.users,
        language_id=args.language_id,
        work_s=args.work_s,
        timeout_s=args.timeout,
    )
