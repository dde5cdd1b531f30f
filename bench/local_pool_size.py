"""How long `kubejudge dev`'s local pool takes to judge a burst, by its maximum size, on this
machine: the evidence for the local pool's default (twice the cores, at least 4).

    .venv/bin/python bench/local_pool_size.py [--burst 100] [--runs 3] [--max 1 2 4 8]

Each run: fresh local Redis and PostgreSQL, the api, and `python -m kubejudge_dev.localpool`
(the real workers under bubblewrap) with `--max M`; the burst goes through POST /submissions,
and the clock stops when every submission is final. Two workloads: `print(1)` (judging is all
sandbox start-up and bookkeeping) and a 0.5 s sleep (what `kubejudge loadtest --work-s 0.5` and
the demo's banner send). Prints a table of medians and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from kubejudge_dev import localservices

from kubejudge import auth
from kubejudge.db.engine import migrate
from kubejudge.settings import Settings

WORKLOADS = {"print": "print(1)\n", "sleep-0.5s": "import time\ntime.sleep(0.5)\n"}
BATCH = 20
SECRET = "bench-secret-0123456789abcdef-0123456789"


def one_run(*, max_workers: int, source: str, burst: int, state: Path) -> float:
    redis = localservices.start_redis(state / "redis")
    postgres = localservices.start_postgres(state / "postgres")
    sandbox = Path(tempfile.mkdtemp(prefix="kubejudge-bench-sandbox-"))
    env = {
        **os.environ, "KUBEJUDGE_REDIS_URL": redis.url, "KUBEJUDGE_DATABASE_URL": postgres.url,
        "KUBEJUDGE_JWT_SECRET": SECRET, "KUBEJUDGE_MIGRATE_ON_START": "false",
        "KUBEJUDGE_SANDBOX_ROOT": str(sandbox), "KUBEJUDGE_RATE_LIMIT_SUBMISSIONS": "100000",
    }  # fmt: skip
    migrate(Settings(redis_url=redis.url, database_url=postgres.url, jwt_secret=SECRET))
    port = localservices.free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
    children = [
        subprocess.Popen([sys.executable, "-m", "kubejudge.cli", "api", "--host", "127.0.0.1",
                          "--port", str(port)], **quiet),  # type: ignore[call-overload]
        subprocess.Popen([sys.executable, "-m", "kubejudge_dev.localpool", "--pool", "default",
                          "--max", str(max_workers), "--worker-arg=--metrics-port=0"],
                         **quiet),  # type: ignore[call-overload]
    ]  # fmt: skip
    try:
        return asyncio.run(_burst(f"http://127.0.0.1:{port}", source=source, burst=burst))
    finally:
        for child in children:
            child.terminate()
        for child in children:
            child.wait(timeout=60)
        postgres.stop()
        redis.stop()
        shutil.rmtree(sandbox, ignore_errors=True)


async def _burst(api: str, *, source: str, burst: int) -> float:
    headers = {"Authorization": f"Bearer {auth.issue(secret=SECRET, user_id='bench')}"}
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as client:
        for _ in range(300):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
        body = {"source_code": source, "language_id": 71}
        started = time.monotonic()
        posted = await asyncio.gather(
            *(client.post("/submissions", json=body) for _ in range(burst))
        )
        waiting = [response.json()["token"] for response in posted]
        while waiting:
            chunk = ",".join(waiting[:BATCH])  # Judge0's batch limit
            found = await client.get(f"/submissions/batch?tokens={chunk}&fields=status_id")
            if all(s["status_id"] > 2 for s in found.json()["submissions"]):
                del waiting[:BATCH]
            else:
                await asyncio.sleep(0.2)
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
    state_root = Path(tempfile.mkdtemp(prefix="kubejudge-bench-"))
    os.chmod(state_root, 0o755)  # noqa: S103 - as root PostgreSQL runs as postgres
    results: dict[str, dict[int, float]] = {}
    try:
        for name, source in WORKLOADS.items():
            for max_workers in args.max:
                times = [
                    one_run(max_workers=max_workers, source=source, burst=args.burst,
                            state=state_root / f"{name}-{max_workers}-{run}")
                    for run in range(args.runs)
                ]  # fmt: skip
                results.setdefault(name, {})[max_workers] = statistics.median(times)
    finally:
        shutil.rmtree(state_root, ignore_errors=True)
    print(f"burst of {args.burst}, median of {args.runs} runs, {os.cpu_count()} cores")
    print(f"{'workload':<12}" + "".join(f"{f'max {m}':>10}" for m in args.max))
    for name, by_max in results.items():
        print(f"{name:<12}" + "".join(f"{by_max[m]:>9.1f}s" for m in args.max))
    print(json.dumps({"bench": "local_pool_size", "burst": args.burst, "runs": args.runs,
                      "cores": os.cpu_count(), "seconds": results}))  # fmt: skip


if __name__ == "__main__":
    main()
