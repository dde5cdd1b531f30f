"""The worker pools' live view, pushed to every socket of this gateway.

Not per user: every page sees the same pools, so each gateway reads them from Redis itself
(one reading per interval however many sockets are open, none while there are none) and writes
the `pools` message to its sockets when it changed, and to each new socket once it is live.
Any gateway can serve any page; the readings are the workers' heartbeats, the queues and the
autoscaler's last decision, all in Redis (kubejudge.poolview).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubejudge import poolview
from kubejudge_gateway import messages

log = logging.getLogger(__name__)


class Viewer(Protocol):
    """A local socket, as the feed sees it: `reply` never blocks or raises."""

    def reply(self, message: str) -> None: ...


class PoolFeed:
    def __init__(self, *, redis: Redis, pools: list[str], interval_s: float) -> None:
        self._redis = redis
        self._watcher = poolview.PoolWatcher(pools)
        self._interval_s = interval_s
        self._viewers: set[Viewer] = set()
        self._latest: str | None = None
        self._wake = asyncio.Event()

    def join(self, viewer: Viewer) -> None:
        self._viewers.add(viewer)
        if self._latest is not None:
            viewer.reply(self._latest)
        self._wake.set()

    def leave(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)

    async def run(self) -> None:
        """Read and push every `interval_s` while anyone watches, until cancelled."""
        while True:
            if not self._viewers:
                self._latest = None  # stale by the time someone comes back
                self._wake.clear()
                await self._wake.wait()
            try:
                rendered = messages.pools(await self._watcher.read(self._redis))
            except (RedisError, OSError) as error:
                log.warning("pool view unavailable: %s", error)
            else:
                if rendered != self._latest:
                    self._latest = rendered
                    for viewer in tuple(self._viewers):
                        viewer.reply(rendered)
            await asyncio.sleep(self._interval_s)
