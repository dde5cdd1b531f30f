"""A worker's liveness in Redis: a heartbeat key with a TTL plus an entry in the pool's index.

The key holds a `protocol.Heartbeat` (what it is judging now, its concurrency, its pod) and
expires unless refreshed; other workers reclaim a worker's queue entries only once its key
is gone. The index (a zset scored by expiry, ms) lets the api and the operator list workers
without scanning keys; entries past their expiry are pruned on every beat.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kubejudge import protocol


async def beat(redis: Redis, heartbeat: protocol.Heartbeat, *, ttl_ms: int) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        add_beat(pipe, heartbeat, ttl_ms=ttl_ms)
        await pipe.execute()


def add_beat(pipe: Pipeline, heartbeat: protocol.Heartbeat, *, ttl_ms: int) -> None:
    """`beat` as more commands of a transaction `pipe`, to share its round trip."""
    key = protocol.worker_heartbeat(heartbeat.pool, heartbeat.worker_id)
    index = protocol.worker_index(heartbeat.pool)
    now = protocol.now_ms()
    pipe.set(key, heartbeat.model_dump_json(), px=ttl_ms)
    pipe.zadd(index, {heartbeat.worker_id: now + ttl_ms})
    pipe.zremrangebyscore(index, "-inf", now)


async def stop(redis: Redis, *, pool: str, worker_id: str) -> None:
    """Leave: whatever we still hold becomes reclaimable at once."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(protocol.worker_heartbeat(pool, worker_id))
        pipe.zrem(protocol.worker_index(pool), worker_id)
        await pipe.execute()
