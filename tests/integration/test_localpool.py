"""`kubejudge dev`'s local pool against a real Redis, with real child processes.

The children are a stand-in for `kubejudge worker` that only heartbeats (through the shared
protocol) and reports busy while a marker file exists, so the test decides who is busy; the
real worker's heartbeats are tested with the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from kubejudge_dev.localpool import LocalPool, add_arguments, limits_from
from redis.asyncio import Redis

from kubejudge import poolload, poolview, protocol, queue
from kubejudge.scaling import PoolLimits
from kubejudge.settings import Settings

POOL = "local"
STAND_IN = """
import asyncio, os, signal, sys
from pathlib import Path
from redis.asyncio import Redis
from kubejudge import protocol

async def main():
    name, pool, marks = os.environ["KUBEJUDGE_POD_NAME"], sys.argv[-1], Path(sys.argv[1])
    redis = Redis.from_url(os.environ["KUBEJUDGE_REDIS_URL"])
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        busy = (marks / f"{name}.busy").exists()
        beat = protocol.Heartbeat(worker_id=name, pool=pool, concurrency=1,
                                  tokens=["t"] if busy else [], pod_name=name)
        await redis.set(protocol.worker_heartbeat(pool, name), beat.model_dump_json(), px=5000)
        await redis.zadd(protocol.worker_index(pool), {name: protocol.now_ms() + 5000})
        try:
            await asyncio.wait_for(stop.wait(), 0.1)
        except TimeoutError:
            pass
    await redis.delete(protocol.worker_heartbeat(pool, name))
    await redis.zrem(protocol.worker_index(pool), name)
    (marks / f"{name}.stopped").touch()

asyncio.run(main())
"""


@pytest.fixture
async def local_pool(settings: Settings, redis: Redis, tmp_path: Path) -> AsyncIterator[LocalPool]:
    pool = LocalPool(
        pool=POOL,
        limits=PoolLimits(
            min_replicas=0, max_replicas=4, target_backlog_per_worker=1, scale_down_delay_s=1
        ),
        argv=[sys.executable, "-c", STAND_IN, str(tmp_path)],
        env=dict(os.environ) | {"KUBEJUDGE_REDIS_URL": settings.redis_url},
        redis=redis,
    )
    yield pool
    await pool.close(timeout_s=10)


async def poll_until(pool: LocalPool, check: Callable[[], bool], *, polls: int = 50) -> None:
    for _ in range(polls):
        await pool.poll()
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached after {polls} polls: {len(pool.workers)} workers")


async def test_the_pool_follows_the_queue_and_stops_idle_workers_first(
    local_pool: LocalPool, redis: Redis, tmp_path: Path
) -> None:
    assert (await local_pool.poll()) is not None
    assert local_pool.workers == []  # idle at zero

    await queue.ensure_group(redis, POOL)
    for i in range(3):
        await queue.enqueue(redis, pool=POOL, token=f"token-{i}")
    decision = await local_pool.poll()  # wakes within one poll
    assert decision is not None and decision.desired == 3
    assert len(local_pool.workers) == 3

    # One worker is judging when the queue empties: it is the one that stays.
    busy = local_pool.workers[1].name
    (tmp_path / f"{busy}.busy").touch()
    for _ in range(300):  # the three processes start and beat (slowly on a loaded machine)
        load = await poolload.observe(redis, POOL)
        if len(load.workers) == 3 and load.busy_pods == {busy}:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"heartbeats not in: {load.workers}")
    await redis.delete(protocol.queue_stream(POOL))
    await poll_until(local_pool, lambda: len(local_pool.workers) == 1)
    assert [worker.name for worker in local_pool.workers] == [busy]
    await poll_until(local_pool, lambda: not local_pool.stopping)  # the other two drained
    stopped = {n.removesuffix(".stopped") for n in os.listdir(tmp_path) if n.endswith(".stopped")}
    assert len(stopped) == 2 and busy not in stopped

    (tmp_path / f"{busy}.busy").unlink()
    await poll_until(local_pool, lambda: not local_pool.workers)


async def test_with_its_defaults_a_burst_grows_the_pool_past_one_and_back_to_zero(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    """`kubejudge dev`'s pool as it starts (no --max, no --delay): on a 2-core machine a burst
    must visibly scale it, and the page must see what it decided (kubejudge.poolview)."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    limits = limits_from(parser.parse_args(["--pool", POOL]))
    pool = LocalPool(
        pool=POOL, limits=limits, argv=[sys.executable, "-c", STAND_IN, str(tmp_path)],
        env=dict(os.environ) | {"KUBEJUDGE_REDIS_URL": settings.redis_url}, redis=redis,
    )  # fmt: skip
    try:
        await queue.ensure_group(redis, POOL)
        for i in range(200):
            await queue.enqueue(redis, pool=POOL, token=f"burst-{i}")
        decision = await pool.poll()
        assert decision is not None and decision.desired >= 3, decision
        assert len(pool.workers) == decision.desired
        seen = await poolview.read_decision(redis, POOL)
        assert seen is not None and (seen.desired, seen.reason) == (
            decision.desired,
            decision.reason,
        )

        await redis.delete(protocol.queue_stream(POOL))
        started = time.monotonic()
        await poll_until(pool, lambda: not pool.workers, polls=150)
        assert time.monotonic() - started < 30, "the pool must shrink while someone watches"
    finally:
        await pool.close(timeout_s=10)


async def test_redis_unreachable_keeps_the_workers(local_pool: LocalPool) -> None:
    local_pool.spawn()
    local_pool.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        assert await local_pool.poll() is None
        assert len(local_pool.workers) == 1
    finally:
        await local_pool.redis.aclose()
