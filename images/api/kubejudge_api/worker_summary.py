"""`GET /workers`: Judge0's per-queue worker summary, built from our heartbeats and backlog.

One entry per pool. A worker judges up to `concurrency` submissions at once, so `available`,
`idle` and `working` count judging slots of live workers (heartbeat not yet expired) — with
concurrency 1 that is exactly Judge0's count of worker processes. `size` is the number of
submissions waiting, as Judge0's is.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from kubejudge import poolload, queue


async def summary(redis: Redis, pools: list[str]) -> list[dict[str, Any]]:
    return [await _pool(redis, pool) for pool in pools]


async def _pool(redis: Redis, pool: str) -> dict[str, Any]:
    heartbeats = await poolload.live_workers(redis, pool)
    slots = sum(heartbeat.concurrency for heartbeat in heartbeats)
    working = sum(min(len(heartbeat.tokens), heartbeat.concurrency) for heartbeat in heartbeats)
    backlog = await queue.backlog(redis, pool)
    return {
        "queue": pool,
        "size": backlog.waiting,
        "available": slots,
        "idle": slots - working,
        "working": working,
        "paused": 0,
        "failed": 0,
    }
