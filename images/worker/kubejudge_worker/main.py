"""`kubejudge worker --pool NAME --concurrency N`: judge a pool's submissions until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import threading
import uuid

import uvloop
from redis.asyncio import Redis

from kubejudge_worker import metrics, record
from kubejudge_worker.sandbox import Sandbox, SandboxConfig
from kubejudge_worker.sandbox.toolchains import warm_go_cache
from kubejudge_worker.settings import WorkerSettings
from kubejudge_worker.worker import Worker

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pool", help="worker pool (queue) to judge; default KUBEJUDGE_POOL")
    parser.add_argument("--concurrency", type=int, help="submissions judged at once")
    parser.add_argument("--metrics-port", type=int, help="/metrics, /healthz, /readyz; 0 = off")


def run(args: argparse.Namespace) -> int:
    overrides = {
        name: value
        for name, value in (
            ("pool", args.pool),
            ("concurrency", args.concurrency),
            ("metrics_port", args.metrics_port),
        )
        if value is not None
    }
    settings = WorkerSettings(**overrides)
    sandbox = Sandbox(
        SandboxConfig(
            root=settings.sandbox_root,
            mode=settings.sandbox_mode,
            allow_rlimit_mode=settings.sandbox_allow_rlimit_mode,
            use_cgroups=settings.sandbox_use_cgroups,
        )
    )
    metrics.SANDBOX_MODE.labels(sandbox.mode, sandbox.memory_accounting).set(1)
    metrics.initialize(settings.pool, settings.language_ids(settings.pool))
    metrics.BOX_SERVERS_STARTED.set_function(lambda: sandbox.servers_started)
    threading.Thread(target=warm_go_cache, name="warm-go-cache", daemon=True).start()
    worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    log.info(
        "worker %s: pool %s, concurrency %d, sandbox %s (memory by %s)",
        worker_id, settings.pool, settings.concurrency, sandbox.mode, sandbox.memory_accounting,
    )  # fmt: skip
    if sandbox.memory_accounting == "watched":
        log.warning(
            "no writable cgroup v1 memory controller: the sandbox watches each run's resident "
            "memory instead (checked every 5 ms, so a program can overshoot its limit briefly)"
        )
    try:
        # uvloop, as the api and gateway run: the loop every slot shares costs a little less.
        released = uvloop.run(_serve(settings, sandbox, worker_id))
    finally:
        sandbox.close()
    if released:
        # Judging threads we gave up on would keep the interpreter alive; their boxes die
        # with us (bwrap --die-with-parent).
        logging.shutdown()
        os._exit(0)
    return 0


async def _serve(settings: WorkerSettings, sandbox: Sandbox, worker_id: str) -> bool:
    redis = Redis.from_url(settings.redis_url)
    pg = await record.connect(settings, concurrency=settings.concurrency)
    worker = Worker(settings=settings, sandbox=sandbox, redis=redis, pg=pg, worker_id=worker_id)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, worker.stop)
    server = None
    if settings.metrics_port:
        server = await metrics.serve(settings.metrics_port, ready=lambda: worker.ready)
    try:
        await worker.run()
    finally:
        if server is not None:
            server.close()
        await redis.aclose()
        await pg.close()
    log.info("worker %s stopped", worker_id)
    return worker.released
