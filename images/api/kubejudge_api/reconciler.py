"""Re-enqueue accepted submissions that are in no queue: the api crashed between commit and
enqueue, Redis was down at enqueue time, or Redis lost the entry.

Every api process runs the loop; a Redis lease lets one of them work at a time. A submission is
re-enqueued when it is still unfinished `reconcile_after_s` after creation and its `enqueued`
marker is gone. The order makes the check race-free against a worker finishing it: workers
commit the verdict *before* they acknowledge (which deletes the marker), so we read the markers
first and re-read the rows second; a row still unfinished after its marker was seen gone has no
worker behind it. `queue.enqueue`'s SET NX keeps the token in a stream at most once regardless.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge import protocol, queue
from kubejudge.statuses import Status
from kubejudge_api.settings import ApiSettings
from kubejudge_api.submission_store import SUBMISSIONS

log = logging.getLogger(__name__)
BATCH = 500

# KEYS: lease. ARGV: holder, ttl ms. Take the lease if free, or extend it if we hold it.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


async def reconcile_once(redis: Redis, engine: AsyncEngine, settings: ApiSettings) -> list[str]:
    """One pass; returns the tokens it put back into a queue."""
    cutoff = datetime.now(UTC) - timedelta(seconds=settings.reconcile_after_s)
    unfinished = SUBMISSIONS.c.status_id <= int(Status.PROCESSING)
    async with engine.connect() as connection:
        candidates = (
            (
                await connection.execute(
                    select(SUBMISSIONS.c.token)
                    .where(unfinished, SUBMISSIONS.c.created_at < cutoff)
                    .order_by(SUBMISSIONS.c.created_at)
                    .limit(BATCH)
                )
            )
            .scalars()
            .all()
        )
    if not candidates:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for token in candidates:
            pipe.exists(protocol.enqueued_marker(token))
        present = await pipe.execute()
    orphans = [token for token, exists in zip(candidates, present, strict=True) if not exists]
    if not orphans:
        return []
    async with engine.connect() as connection:
        still = (
            await connection.execute(
                select(SUBMISSIONS.c.token, SUBMISSIONS.c.language_id).where(
                    unfinished, SUBMISSIONS.c.token.in_(orphans)
                )
            )
        ).all()
    requeued = []
    for token, language_id in still:
        pool = settings.pool_for_language(language_id)
        if await queue.enqueue(redis, pool=pool, token=token) is not None:
            requeued.append(token)
    if requeued:
        log.warning("re-enqueued %d submissions that were in no queue", len(requeued))
    return requeued


async def run_forever(redis: Redis, engine: AsyncEngine, settings: ApiSettings) -> None:
    """The background task of every api process."""
    holder = uuid.uuid4().hex
    lease_ms = int(settings.reconcile_interval_s * 3 * 1000)
    while True:
        try:
            if await redis.eval(_LEASE, 1, protocol.RECONCILER_LEASE, holder, lease_ms):
                await reconcile_once(redis, engine, settings)
        except (RedisError, SQLAlchemyError, OSError) as error:
            log.warning("reconciler pass failed, retrying: %s", error)
        await asyncio.sleep(settings.reconcile_interval_s)
