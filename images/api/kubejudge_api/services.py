"""What a running api process holds: settings, the database engine, Redis, the shared verdict
subscription, metrics, and the reconciler task. Built in the app's lifespan, never at import."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge import auth, queue
from kubejudge.db.engine import create_engine, create_pool
from kubejudge_api import reconciler
from kubejudge_api.backpressure import Backpressure
from kubejudge_api.metrics import ApiMetrics
from kubejudge_api.settings import ApiSettings
from kubejudge_api.waiter import VerdictWaiter


@dataclass
class Services:
    settings: ApiSettings
    engine: AsyncEngine
    pg: asyncpg.Pool  # raw asyncpg for the accept path's inserts
    redis: Redis
    waiter: VerdictWaiter
    metrics: ApiMetrics
    backpressure: Backpressure
    tokens: auth.VerifiedTokens  # the bearer JWTs seen lately, verified once each
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: ApiSettings, metrics: ApiMetrics) -> Services:
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        services = cls(
            settings=settings,
            engine=create_engine(settings, pool_size=10),
            pg=await create_pool(settings, min_size=1, max_size=20),
            redis=redis,
            waiter=VerdictWaiter(redis),
            metrics=metrics,
            backpressure=Backpressure(redis, max_queue_size=settings.max_queue_size),
            tokens=auth.VerifiedTokens(secret=settings.jwt_secret),
        )
        services.waiter.start()
        with contextlib.suppress(Exception):  # Redis may be down: the reconciler catches up
            for pool in settings.pools:
                await queue.ensure_group(redis, pool)
        services.tasks.append(
            asyncio.create_task(
                reconciler.run_forever(redis, services.engine, settings), name="reconciler"
            )
        )
        return services

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        # Bounded: redis-py can swallow a cancellation (seen in the gateway's pub/sub reads), and
        # a task that missed its cancel must not hang shutdown.
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
        await self.waiter.close()
        await self.redis.aclose()
        await self.pg.close()
        await self.engine.dispose()
