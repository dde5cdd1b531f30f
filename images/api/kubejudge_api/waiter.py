"""`wait=true` without a thread per request and without polling: one shared pub/sub
connection per api process, one subscription per awaited submission.

The order that leaves no gap: subscribe to the submission's verdict channel, wait until Redis
confirms the subscription, and only then re-read the row. A verdict committed before the
re-read is in the row; one committed after it is published after it, so it wakes us.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubejudge import protocol
from kubejudge.replies import as_text

log = logging.getLogger(__name__)


class Subscription:
    def __init__(self) -> None:
        self.confirmed = asyncio.Event()
        self.published = asyncio.Event()
        self.waiters = 0


class VerdictWaiter:
    def __init__(self, redis: Redis) -> None:
        self._pubsub = redis.pubsub()
        self._subscriptions: dict[str, Subscription] = {}
        self._active = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="verdict-waiter")

    async def close(self) -> None:
        # The flag, not only the cancel, ends the reader: redis-py can swallow a CancelledError
        # raised inside a pub/sub read (seen in the gateway), and the reader then loops on.
        self._closing = True
        self._active.set()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pubsub.aclose()

    @contextlib.asynccontextmanager
    async def watch(self, token: str, *, timeout_s: float) -> AsyncIterator[Subscription]:
        """Subscribe (confirmed within `timeout_s`) for the duration of the block."""
        channel = protocol.verdict_channel(token)
        subscription = self._subscriptions.get(channel)
        if subscription is None:
            subscription = self._subscriptions[channel] = Subscription()
        subscription.waiters += 1
        try:
            if subscription.waiters == 1:
                await self._pubsub.subscribe(channel)
                self._active.set()
            await asyncio.wait_for(subscription.confirmed.wait(), timeout_s)
            yield subscription
        finally:
            subscription.waiters -= 1
            if subscription.waiters == 0:
                del self._subscriptions[channel]
                with contextlib.suppress(RedisError, ConnectionError):
                    await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        while not self._closing:
            await self._active.wait()
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except (RedisError, ConnectionError, RuntimeError) as error:
                # Redis went away: waiters time out and return the row as it is.
                log.warning("verdict subscription lost: %s", error)
                await asyncio.sleep(0.5)
                continue
            if message is None:
                if not self._subscriptions:
                    self._active.clear()
                continue
            channel = as_text(message["channel"])
            subscription = self._subscriptions.get(channel)
            if subscription is None:
                continue
            if message["type"] == "subscribe":
                subscription.confirmed.set()
            elif message["type"] == "message":
                # Waiters hold the event they saw before re-reading the row; a fresh one
                # catches the next publish (a status change is not yet the verdict).
                fired, subscription.published = subscription.published, asyncio.Event()
                fired.set()
