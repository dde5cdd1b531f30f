"""The pipeline's own delay: submit over HTTP -> verdict on a WebSocket, less the run itself.

    .venv/bin/python bench/pipeline_delay.py [--rate 50] [--seconds 10] [--runs 3]
                                             [--concurrency CORES]

Starts a local Redis and PostgreSQL (kubejudge_dev.localservices), migrates, then the roles as
host processes, as `kubejudge dev` does: one api, one gateway, and one worker (concurrency =
cores unless `--concurrency`; a fixed worker, so the local pool's scaling is not measured).
A client signed in as one user opens a WebSocket to the gateway, then submits a trivial Python
program (`print(input())`) at a steady `--rate` for `--seconds` (open loop: each submission is
charged from its scheduled time, so a stall in the client counts as delay), and waits for each
one's `verdict` event on the socket. All of it on loopback.

For each submission: submit -> socket (scheduled send to the verdict read from the socket), and
that less the program's own wall time as the sandbox measured it (the verdict's `wall_time`):
what the api, queue, worker, sandbox set-up, PostgreSQL, pub/sub and gateway add; and where it
goes, from the row's own timestamps: api (send -> row inserted), queue (-> claimed by the
worker), sandbox (-> verdict made, less the program's wall time), worker (-> the verdict on
the user's Redis channel, seen by a probe subscribed to it: verdict write and publish), gateway
(-> read from the socket). Also the api's answer time (send -> 201).
Reported per run and as the median of the runs: p50 and p99 of each, and lost verdicts (must
be 0). Targets on 2 cores at 50/s: the pipeline's own delay
p50 <= 5 ms, p99 <= 25 ms. Needs root (the sandbox), bubblewrap and PostgreSQL binaries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from kubejudge_dev import localservices
from kubejudge_dev.loadtest.report import percentiles
from redis.asyncio import Redis
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from kubejudge import auth, events, protocol  # noqa: E402
from kubejudge.db.engine import migrate  # noqa: E402
from kubejudge.settings import Settings  # noqa: E402
from tests.support.processes import spawn_role, stop, wait_ready  # noqa: E402

SECRET = "bench-secret-0123456789abcdef-0123456789"
USER = "bench"
BODY = {"source_code": "print(input())", "language_id": 71, "stdin": "42"}
TICK_S = 0.005
VERDICT_TIMEOUT_S = 30
STAGES = ("api", "queue", "sandbox", "worker", "gateway")


@dataclass
class Run:
    submitted: dict[str, float] = field(default_factory=dict)  # token -> scheduled send
    accept_ms: list[float] = field(default_factory=list)
    total_ms: list[float] = field(default_factory=list)  # submit -> socket
    own_ms: list[float] = field(default_factory=list)  # that less the program's wall time
    # Where the own delay goes, from the row's timestamps (one clock: all on this machine):
    # scheduled send -> row inserted (api), -> claimed (queue, read, claim), -> verdict made
    # less the program's wall time (sandbox set-up and teardown), -> published on the user's
    # channel (verdict write, publish: the worker), -> read from the socket (the gateway).
    stages_ms: dict[str, list[float]] = field(
        default_factory=lambda: {stage: [] for stage in STAGES}
    )
    errors: int = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="submissions per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=0, help="default: one per core")
    args = parser.parse_args()
    concurrency = args.concurrency or os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="kubejudge-bench-"))
    work.chmod(0o755)
    with localservices.running(
        localservices.start_redis(work / "redis"), localservices.start_postgres(work / "pg")
    ) as (redis_server, postgres_server):
        migrate(Settings(redis_url=redis_server.url, database_url=postgres_server.url))
        env = {
            **os.environ,
            "KUBEJUDGE_REDIS_URL": redis_server.url,
            "KUBEJUDGE_DATABASE_URL": postgres_server.url,
            "KUBEJUDGE_JWT_SECRET": SECRET,
            "KUBEJUDGE_MIGRATE_ON_START": "false",
            "KUBEJUDGE_RATE_LIMIT_SUBMISSIONS": "100000000",
            "KUBEJUDGE_LOG_LEVEL": "WARNING",
            "KUBEJUDGE_SANDBOX_ROOT": str(work / "sandbox"),
        }
        api_port, gateway_port = localservices.free_port(), localservices.free_port()
        roles = [
            spawn_role("api", "--host", "127.0.0.1", "--port", str(api_port),
                       env=env, log=work / "api.log"),
            spawn_role("gateway", "--host", "127.0.0.1", "--port", str(gateway_port),
                       env=env, log=work / "gateway.log"),
            spawn_role("worker", "--pool", "default", "--concurrency", str(concurrency),
                       "--metrics-port", "0", env=env, log=work / "worker.log"),
        ]  # fmt: skip
        try:
            wait_ready(f"http://127.0.0.1:{api_port}/readyz", roles, work)
            wait_ready(f"http://127.0.0.1:{gateway_port}/readyz", roles, work)
            api, gateway = f"http://127.0.0.1:{api_port}", f"ws://127.0.0.1:{gateway_port}/ws"
            urls = Urls(api, gateway, postgres_server.url, redis_server.url)
            asyncio.run(drive(urls, rate=args.rate, seconds=1.0))  # warm-up, not counted
            runs = [
                asyncio.run(drive(urls, rate=args.rate, seconds=args.seconds))
                for _ in range(args.runs)
            ]
        finally:
            stop(roles)
    report(args, concurrency, runs)


@dataclass(frozen=True, slots=True)
class Urls:
    api: str
    gateway: str
    database: str
    redis: str


async def drive(urls: Urls, *, rate: float, seconds: float) -> Run:
    """Submit at `rate` for `seconds` and time each verdict to the socket."""
    token = auth.issue(secret=SECRET, user_id=USER)
    run = Run()
    verdicts: dict[str, tuple[float, float]] = {}  # token -> (read at, program wall time s)
    published: dict[str, float] = {}  # token -> its verdict seen on the user's Redis channel
    total = int(rate * seconds)
    redis = Redis.from_url(urls.redis)
    channel = redis.pubsub()
    await channel.subscribe(protocol.user_channel(USER))
    async with (
        connect(f"{urls.gateway}?token={token}") as socket,
        httpx.AsyncClient(base_url=urls.api, headers={"Authorization": f"Bearer {token}"}) as http,
    ):

        async def probe() -> None:
            async for message in channel.listen():
                if message["type"] == "message":
                    _, event = events.parse_live(message["data"])
                    if event.type == "verdict":
                        published[event.token] = time.perf_counter()

        async def listen() -> None:
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] == "verdict":
                    wall_s = float(message["data"]["wall_time"] or 0)
                    verdicts[message["data"]["token"]] = (time.perf_counter(), wall_s)

        async def submit(scheduled: float) -> None:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            sent = time.perf_counter()
            answer = await http.post("/submissions", json=BODY)
            run.accept_ms.append((time.perf_counter() - sent) * 1000)
            if answer.status_code != 201:
                run.errors += 1
                return
            run.submitted[answer.json()["token"]] = scheduled

        listening = [asyncio.create_task(listen()), asyncio.create_task(probe())]
        start = time.perf_counter() + 0.1
        await asyncio.gather(*(submit(start + n / rate) for n in range(total)))
        for _ in range(round(VERDICT_TIMEOUT_S / TICK_S)):  # what never comes counts as lost
            if run.submitted.keys() <= verdicts.keys():
                break
            await asyncio.sleep(TICK_S)
        for task in listening:
            task.cancel()
    await channel.aclose()
    await redis.aclose()
    clock_offset = time.time() - time.perf_counter()  # perf_counter -> Unix time
    connection = await asyncpg.connect(urls.database)
    try:
        rows = await connection.fetch(
            "SELECT token, created_at, started_at, finished_at FROM submissions "
            "WHERE token = ANY($1::varchar[])",
            list(run.submitted),
        )
    finally:
        await connection.close()
    stamps = {row["token"]: row for row in rows}
    for submitted, scheduled in run.submitted.items():
        if submitted in verdicts:
            read_at, wall_s = verdicts[submitted]
            run.total_ms.append((read_at - scheduled) * 1000)
            run.own_ms.append((read_at - scheduled - wall_s) * 1000)
            row = stamps[submitted]
            created, started = row["created_at"].timestamp(), row["started_at"].timestamp()
            finished = row["finished_at"].timestamp()
            out = published.get(submitted, read_at) + clock_offset
            spans = {
                "api": created - (scheduled + clock_offset),
                "queue": started - created,
                "sandbox": finished - started - wall_s,
                "worker": out - finished,
                "gateway": read_at + clock_offset - out,
            }
            for stage, span_s in spans.items():
                run.stages_ms[stage].append(span_s * 1000)
    return run


def report(args: argparse.Namespace, concurrency: int, runs: list[Run]) -> None:
    figures = [
        {
            **{
                f"{name}_{rank}_ms": percentiles(values)[rank]
                for name, values in (
                    ("own", run.own_ms),
                    ("total", run.total_ms),
                    ("accept", run.accept_ms),
                )
                for rank in ("p50", "p99")
            },
            **{f"{stage}_p50_ms": percentiles(run.stages_ms[stage])["p50"] for stage in STAGES},
            "judged": len(run.total_ms),
            "lost": len(run.submitted) - len(run.total_ms),
            "errors": run.errors,
        }
        for run in runs
    ]
    median = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
    print(f"{'run':<8}{'own p50':>9}{'own p99':>9}{'total p50':>11}{'total p99':>11}"
          f"{'201 p50':>9}{'201 p99':>9}{'judged':>8}{'lost':>6}")  # fmt: skip
    for name, f in [*((str(n), f) for n, f in enumerate(figures, start=1)), ("median", median)]:
        print(f"{name:<8}{f['own_p50_ms']:>9.1f}{f['own_p99_ms']:>9.1f}{f['total_p50_ms']:>11.1f}"
              f"{f['total_p99_ms']:>11.1f}{f['accept_p50_ms']:>9.1f}{f['accept_p99_ms']:>9.1f}"
              f"{f['judged']:>8.0f}{f['lost']:>6.0f}")  # fmt: skip
    print("where the own delay goes, p50 ms per stage (median of runs): " + ", ".join(
        f"{stage} {median[f'{stage}_p50_ms']:.1f}" for stage in STAGES
    ))  # fmt: skip
    print(
        "own = submit -> verdict on the socket, less the program's wall time (ms); "
        f"{args.rate:g}/s for {args.seconds:g} s, worker concurrency {concurrency}"
    )
    print(json.dumps({"bench": "pipeline_delay", "rate": args.rate, "seconds": args.seconds,
                      "runs": args.runs, "concurrency": concurrency, **median,
                      "per_run": figures}))  # fmt: skip


if __name__ == "__main__":
    main()
