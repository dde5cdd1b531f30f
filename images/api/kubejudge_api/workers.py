"""`GET /workers`: Judge0's per-queue worker summary, built from our heartbeats and backlog.

One entry per pool. A worker judges up to `concurrency` submissions at once, so `available`,
`idle` and `working` count judging slots of live workers (heartbeat not yet expired) — with
concurrency 1 that is exactly Judge0's count of worker processes. `size` is the number of
submissions waiting, as Judge0's is.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from kubejudge import protocol, queue


async def summary(redis: Redis, pools: list[str]) -> list[dict[str, Any]]:
    return [await _pool(redis, pool) for pool in pools]


async def _pool(redis: Redis, pool: str) -> dict[str, Any]:
    now = protocol.now_ms()
    worker_ids = await redis.zrangebyscore(protocol.worker_index(pool), now, "+inf")
    heartbeats = []
    if worker_ids:
        keys = [protocol.worker_heartbeat(pool, _text(worker_id)) for worker_id in worker_ids]
        heartbeats = [
            protocol.Heartbeat.model_validate_json(raw)
            for raw in await redis.mget(keys)
            if raw is not None
        ]
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
