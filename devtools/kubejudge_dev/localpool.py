"""`kubejudge dev`'s autoscaled worker pool: local `kubejudge worker` processes, sized by the
same policy as the operator's (`kubejudge.scaling`), from the same Redis readings.

Each process gets a name in KUBEJUDGE_POD_NAME, so its heartbeat says which process is busy;
scaling down stops idle processes first (SIGTERM: a worker drains) and never a busy one.

    python -m kubejudge_dev.localpool --pool default --max 4   (`kubejudge dev` runs one, all pools)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubejudge import poolload, poolview
from kubejudge.scaling import Decision, Memory, Observation, PoolLimits, decide
from kubejudge.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class LocalWorker:
    name: str
    process: subprocess.Popen[bytes]


@dataclass
class LocalPool:
    pool: str
    limits: PoolLimits
    argv: list[str]  # the worker command; `--pool` is appended
    env: dict[str, str]
    redis: Redis
    workers: list[LocalWorker] = field(default_factory=list)
    stopping: list[LocalWorker] = field(default_factory=list)
    memory: Memory = field(default_factory=Memory)
    started: int = 0

    async def poll(self) -> Decision | None:
        """Measure, decide, and start or stop processes; None when Redis did not answer."""
        self.reap()
        try:
            load = await poolload.observe(self.redis, self.pool)
        except (RedisError, OSError) as error:
            log.warning("pool %s keeps %d workers: Redis unreachable (%s)", self.pool,
                        len(self.workers), error)  # fmt: skip
            return None
        busy = load.busy_pods & {worker.name for worker in self.workers}
        seen = Observation(
            waiting=load.backlog.waiting,
            pending=load.backlog.pending,
            busy=len(busy),
            current=len(self.workers),
        )
        decision = decide(limits=self.limits, seen=seen, memory=self.memory, now=time.monotonic())
        self.memory = decision.memory
        if decision.changed:
            log.info("pool %s: %s", self.pool, decision.reason)
        with contextlib.suppress(RedisError, OSError):  # the page's view, not the scaling
            await poolview.record_decision(
                self.redis, pool=self.pool, desired=decision.desired,
                current=len(self.workers), reason=decision.reason,
            )  # fmt: skip
        while len(self.workers) < decision.desired:
            self.spawn()
        if len(self.workers) > decision.desired:
            self.stop_idle(len(self.workers) - decision.desired, busy=busy)
        return decision

    def spawn(self) -> None:
        self.started += 1
        name = f"local-{self.pool}-{os.getpid()}-{self.started}"
        env = self.env | {"KUBEJUDGE_POD_NAME": name}
        process = subprocess.Popen([*self.argv, "--pool", self.pool], env=env)
        self.workers.append(LocalWorker(name=name, process=process))

    def stop_idle(self, count: int, *, busy: frozenset[str] | set[str]) -> None:
        """Stop `count` workers, idle ones first (the policy never asks for fewer than busy)."""
        ranked = sorted(self.workers, key=lambda worker: worker.name in busy)
        for worker in ranked[:count]:
            worker.process.send_signal(signal.SIGTERM)
            self.workers.remove(worker)
            self.stopping.append(worker)

    def reap(self) -> None:
        """Forget processes that exited (a crashed worker is replaced by the next decision)."""
        for worker in [w for w in self.workers if w.process.poll() is not None]:
            log.warning("worker %s exited with %s", worker.name, worker.process.returncode)
            self.workers.remove(worker)
        self.stopping = [w for w in self.stopping if w.process.poll() is None]

    async def close(self, *, timeout_s: float = 30.0) -> None:
        """Stop every worker and wait for them to drain (then kill what is left)."""
        self.stop_idle(len(self.workers), busy=set())
        deadline = time.monotonic() + timeout_s
        while self.stopping and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            self.reap()
        for worker in self.stopping:
            worker.process.kill()
            worker.process.wait()
        self.stopping.clear()


async def run_pool(pool: LocalPool, *, poll_s: float, stop: asyncio.Event) -> None:
    try:
        while not stop.is_set():
            await pool.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_s)
    finally:
        await pool.close()


def default_max(cpus: int | None = None) -> int:
    """Twice the cores, at least 4, so the demo shows what it is named for: half the cores was
    1 on a 2-core laptop, and a burst never scaled. More workers than cores pays off when
    programs wait (sleep, I/O) and costs a little when they only compute, for the workers'
    own start-up (bench/local_pool_size.py measures both)."""
    return max(4, 2 * (cpus or os.cpu_count() or 2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pool", action="append", required=True, help="a pool (queue) to run workers for"
    )
    parser.add_argument("--min", type=int, default=0, help="fewest workers (0: sleep when idle)")
    parser.add_argument("--max", type=int, default=default_max(), help="most workers")
    parser.add_argument("--target", type=int, default=1, help="backlog per worker")
    parser.add_argument("--delay", type=float, default=10.0, help="scale-down delay, seconds")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    parser.add_argument(
        "--worker-arg", action="append", default=[], help="extra argument for each worker"
    )


def limits_from(args: argparse.Namespace) -> PoolLimits:
    return PoolLimits(
        min_replicas=args.min,
        max_replicas=args.max,
        target_backlog_per_worker=args.target,
        scale_down_delay_s=args.delay,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubejudge_dev.localpool", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    limits = limits_from(args)
    worker = [sys.executable, "-m", "kubejudge.cli", "worker", *args.worker_arg]
    return asyncio.run(_serve(args.pool, limits, worker, poll_s=args.poll))


async def _serve(names: list[str], limits: PoolLimits, worker: list[str], *, poll_s: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis = Redis.from_url(Settings().redis_url, socket_timeout=2, socket_connect_timeout=2)
    pools = [
        LocalPool(pool=name, limits=limits, argv=worker, env=dict(os.environ), redis=redis)
        for name in names
    ]
    try:
        await asyncio.gather(*(run_pool(pool, poll_s=poll_s, stop=stop) for pool in pools))
    finally:
        await redis.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
