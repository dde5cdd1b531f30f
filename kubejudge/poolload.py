"""What a worker pool has to do and who is doing it, read from Redis in one place.

The operator's autoscaler and `kubejudge dev`'s local pool both turn this into a
`kubejudge.scaling.Observation`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pydantic import ValidationError
from redis.asyncio import Redis

from kubejudge import protocol
from kubejudge.queue import Backlog, backlog, oldest_waiting_age_ms
from kubejudge.replies import as_text

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolLoad:
    backlog: Backlog
    workers: tuple[protocol.Heartbeat, ...]  # live workers: heartbeat not yet expired
    oldest_waiting_ms: int = 0  # age of the first entry not yet handed to a worker

    @property
    def busy(self) -> int:
        return sum(1 for worker in self.workers if worker.busy)

    @property
    def busy_pods(self) -> frozenset[str]:
        return frozenset(w.pod_name for w in self.workers if w.busy and w.pod_name)


async def live_workers(redis: Redis, pool: str) -> tuple[protocol.Heartbeat, ...]:
    """Workers whose heartbeat key is still there (the index may hold expired ids)."""
    ids = await redis.zrangebyscore(protocol.worker_index(pool), protocol.now_ms(), "+inf")
    if not ids:
        return ()
    keys = [protocol.worker_heartbeat(pool, as_text(worker_id)) for worker_id in ids]
    workers = []
    for raw in await redis.mget(keys):
        if raw is None:
            continue
        try:
            workers.append(protocol.Heartbeat.model_validate_json(raw))
        except ValidationError:
            log.warning("ignoring a malformed heartbeat in pool %s", pool)
    return tuple(workers)


async def observe(redis: Redis, pool: str) -> PoolLoad:
    return PoolLoad(
        backlog=await backlog(redis, pool),
        workers=await live_workers(redis, pool),
        oldest_waiting_ms=await oldest_waiting_age_ms(redis, pool),
    )
