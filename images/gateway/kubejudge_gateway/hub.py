"""The process's one Redis pub/sub connection, shared by every socket.

A user's channel is subscribed while at least one of that user's sockets is open here, and each
live event is rendered once and offered to all of them. SUBSCRIBE and UNSUBSCRIBE go out in the
order sockets open and close, batched, through one writer task; Redis confirms each channel in
that same order, so the n-th `subscribe` reply for a channel answers the n-th SUBSCRIBE sent for
it, however opens and closes interleave. A socket starts reading history only after its
channel's subscription is confirmed, so nothing published in between can slip past it.

If the pub/sub connection breaks, messages published meanwhile are gone for good (pub/sub is
at-most-once): every local socket is closed with 1001 and resumes from its last event id, on
this gateway once it has reconnected to Redis, or on another.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from kubejudge import events, protocol
from kubejudge_gateway import messages
from kubejudge_gateway.metrics import GatewayMetrics
from kubejudge_gateway.replay import EventId

log = logging.getLogger(__name__)

RECONNECT_BACKOFF_S = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
# An idle pub/sub connection is PINGed this often; one silent for FEED_SILENCE_S is dead (a
# half-open TCP connection after a network partition would otherwise look merely quiet).
PING_INTERVAL_S = 5.0
FEED_SILENCE_S = 15.0


class Listener(Protocol):
    """A local socket, as the hub sees it. Neither method may block or raise."""

    def offer(self, event_id: EventId, message: str, created_at_ms: int) -> None: ...

    def feed_lost(self) -> None: ...


class FeedUnavailable(Exception):
    """The gateway has no working pub/sub connection right now."""


@dataclass(eq=False)
class _Channel:
    listeners: set[Listener] = field(default_factory=set)
    # Resolves True when Redis confirms the SUBSCRIBE, False if the feed is lost first.
    subscribed: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Hub:
    def __init__(self, *, redis_url: str, metrics: GatewayMetrics) -> None:
        self._redis_url = redis_url
        self._metrics = metrics
        self._channels: dict[str, _Channel] = {}
        self._confirmations: dict[str, deque[asyncio.Future[bool]]] = {}
        self._commands: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._online = asyncio.Event()
        self._heard_at = 0.0  # loop time of the last reply on the pub/sub connection
        self._went_online = False  # whether the current connection attempt got through
        self._stopping = False
        self._pubsub: PubSub | None = None

    @property
    def online(self) -> bool:
        return self._online.is_set()

    def local_sockets(self, user_id: str) -> int:
        channel = self._channels.get(protocol.user_channel(user_id))
        return 0 if channel is None else len(channel.listeners)

    async def join(self, user_id: str, listener: Listener) -> None:
        """Add a socket to its user's fan-out; returns once the user's channel is live."""
        if not self._online.is_set():
            raise FeedUnavailable("not connected to Redis pub/sub")
        name = protocol.user_channel(user_id)
        channel = self._channels.get(name)
        if channel is None:
            channel = self._channels[name] = _Channel()
            self._confirmations.setdefault(name, deque()).append(channel.subscribed)
            self._commands.put_nowait(("SUBSCRIBE", name))
            self._metrics.subscribed_users.set(len(self._channels))
        channel.listeners.add(listener)
        if not await asyncio.shield(channel.subscribed):
            raise FeedUnavailable("lost Redis pub/sub while subscribing")

    def leave(self, user_id: str, listener: Listener) -> None:
        name = protocol.user_channel(user_id)
        channel = self._channels.get(name)
        if channel is None or listener not in channel.listeners:
            return  # already dropped with the feed
        channel.listeners.discard(listener)
        if not channel.listeners:
            del self._channels[name]
            self._commands.put_nowait(("UNSUBSCRIBE", name))
            self._metrics.subscribed_users.set(len(self._channels))

    async def run(self) -> None:
        """Keep the pub/sub connection up until cancelled, reconnecting with backoff."""
        failures = 0
        while not self._stopping:
            self._went_online = False
            try:
                await self._serve()
            except* (RedisError, OSError) as group:
                if not self._stopping:
                    log.warning("lost Redis pub/sub: %s", group.exceptions[0])
            except* RuntimeError:  # redis-py's answer to a read on a connection we closed
                if not self._stopping:
                    raise
            if self._stopping:
                return
            if self._went_online:
                failures = 0
                self._metrics.feed_losses.inc()
            self._drop_everything()
            await asyncio.sleep(RECONNECT_BACKOFF_S[min(failures, len(RECONNECT_BACKOFF_S) - 1)])
            failures += 1

    async def _serve(self) -> None:
        # No retries inside redis-py: a silent reconnect would hide the messages it missed.
        client = Redis.from_url(self._redis_url, retry=Retry(NoBackoff(), 0))
        pubsub = self._pubsub = client.pubsub()
        try:
            await pubsub.connect()
            self._online.set()
            self._went_online = True
            log.info("subscribed to Redis pub/sub at %s", self._redis_url.rpartition("@")[2])
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._write_commands(pubsub))
                tasks.create_task(self._read_messages(pubsub))
                tasks.create_task(self._watch_silence())
        finally:
            self._online.clear()
            self._pubsub = None
            await pubsub.aclose()
            await client.aclose()

    async def stop(self) -> None:
        """End `run`. Cancelling it is not enough on its own: redis-py can swallow the
        CancelledError of a task blocked in a pub/sub read (seen in CI: a gateway that closed its
        sockets on SIGTERM, then stayed up). Closing the connection ends that read for sure."""
        self._stopping = True
        if self._pubsub is not None and self._pubsub.connection is not None:
            await self._pubsub.connection.disconnect()

    async def _write_commands(self, pubsub: PubSub) -> None:
        while True:
            try:
                batch = [await asyncio.wait_for(self._commands.get(), PING_INTERVAL_S)]
            except TimeoutError:
                await pubsub.execute_command("PING")
                continue
            while not self._commands.empty():
                batch.append(self._commands.get_nowait())
            for command, channels in _runs(batch):
                await pubsub.execute_command(command, *channels)

    async def _read_messages(self, pubsub: PubSub) -> None:
        while True:
            message = await pubsub.get_message(timeout=None)
            self._heard_at = asyncio.get_running_loop().time()
            if message is None or message["type"] == "pong":
                continue
            name = message["channel"].decode()
            if message["type"] == "subscribe":
                waiting = self._confirmations.get(name)
                if waiting:
                    confirmed = waiting.popleft()
                    if not confirmed.done():
                        confirmed.set_result(True)
                    if not waiting:
                        del self._confirmations[name]
            elif message["type"] == "message":
                self._fan_out(name, message["data"])

    async def _watch_silence(self) -> None:
        loop = asyncio.get_running_loop()
        self._heard_at = loop.time()
        while True:
            await asyncio.sleep(PING_INTERVAL_S)
            if loop.time() - self._heard_at > FEED_SILENCE_S:
                raise ConnectionError(f"Redis pub/sub silent for over {FEED_SILENCE_S:g} s")

    def _fan_out(self, name: str, payload: bytes) -> None:
        channel = self._channels.get(name)
        if channel is None:
            return  # an UNSUBSCRIBE is on its way
        try:
            event_id_text, event = events.parse_live(payload)
            event_id = EventId.parse(event_id_text)
        except (ValidationError, ValueError) as error:
            log.error("dropped a malformed event on %s: %s", name, error)
            return
        rendered = messages.event(event_id, event)
        for listener in tuple(channel.listeners):
            listener.offer(event_id, rendered, event.created_at_ms)

    def _drop_everything(self) -> None:
        for waiting in self._confirmations.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_result(False)
        listeners = [listener for c in self._channels.values() for listener in c.listeners]
        self._confirmations.clear()
        self._channels.clear()
        self._commands = asyncio.Queue()
        self._metrics.subscribed_users.set(0)
        for listener in listeners:
            listener.feed_lost()


def _runs(batch: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Group consecutive commands of the same kind into one, keeping their order."""
    runs: list[tuple[str, list[str]]] = []
    for command, channel in batch:
        if runs and runs[-1][0] == command:
            runs[-1][1].append(channel)
        else:
            runs.append((command, [channel]))
    return runs
