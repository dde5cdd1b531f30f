"""One WebSocket of one user: the order events reach it in, and its bounded send path.

A session starts REPLAYING: live events from the hub are held while the missed history is
written, then it goes LIVE and flushes what it held. Every event is sent at most once, in id
order: anything at or before the last id sent is a duplicate (history and live overlap by
design) and is dropped.

Live writes never wait for the client. They go into the connection's transport buffer, and a
socket whose unsent bytes pass `gateway_send_buffer_bytes` is closed with 1013, so a client
that stops reading costs at most that much memory and never slows anyone else down.
"""

from __future__ import annotations

import asyncio
import enum

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.frames import CloseCode

from kubejudge import protocol
from kubejudge_gateway import messages
from kubejudge_gateway.metrics import GatewayMetrics
from kubejudge_gateway.replay import ORIGIN, EventId, HistoryEntry

SLOW_CONSUMER = CloseCode.TRY_AGAIN_LATER  # 1013


class State(enum.Enum):
    # Live events are held back while the missed history is being written.
    REPLAYING = "replaying"
    # Live events are written as they arrive.
    LIVE = "live"
    # A close is under way; nothing more is written.
    CLOSING = "closing"


class Session:
    def __init__(
        self,
        websocket: ServerConnection,
        *,
        send_buffer_bytes: int,
        hold_limit: int,
        metrics: GatewayMetrics,
    ) -> None:
        self.websocket = websocket
        self.state = State.REPLAYING
        self.position = ORIGIN  # the id of the last event written to this socket
        self._send_buffer_bytes = send_buffer_bytes
        self._hold_limit = hold_limit
        self._metrics = metrics
        self._held: list[tuple[EventId, str, int]] = []
        self._closing: asyncio.Task[None] | None = None

    # The hub's side (see hub.Listener): never blocks, never raises.

    def offer(self, event_id: EventId, message: str, created_at_ms: int) -> None:
        if self.state is State.LIVE:
            self._send_live(event_id, message, created_at_ms)
        elif self.state is State.REPLAYING:
            if len(self._held) >= self._hold_limit:
                self._slow_consumer("too many events arrived during replay")
            else:
                self._held.append((event_id, message, created_at_ms))

    def feed_lost(self) -> None:
        self.close(CloseCode.GOING_AWAY, "gateway lost its event feed; reconnect")

    # The connection handler's side.

    async def start(
        self, *, first: str | None, position: EventId, replay: list[HistoryEntry]
    ) -> None:
        """Write `first` (welcome or resync), then the missed events, then go live."""
        self.position = position
        if first is not None:
            await self.websocket.send(first)
        for entry in replay:
            if self.state is State.CLOSING:
                return
            # Awaited: a replay may be long, and backpressure here only delays this socket.
            await self.websocket.send(messages.event(entry.id, entry.event))
            self.position = entry.id
            self._metrics.events_delivered.labels("replay").inc()
        if self.state is not State.REPLAYING:
            return
        self.state = State.LIVE
        held, self._held = self._held, []
        for event_id, message, created_at_ms in held:
            self._send_live(event_id, message, created_at_ms)

    def reply(self, message: str) -> None:
        """A message outside the event order (pong, error, the pools' view), through the same
        bounded path."""
        if self.state is not State.CLOSING:
            self._write(message)

    def close(self, code: int, reason: str) -> None:
        if self.state is State.CLOSING:
            return
        self.state = State.CLOSING
        self._held.clear()
        self._closing = asyncio.create_task(self.websocket.close(code, reason))

    async def closed(self) -> None:
        """Wait for a close this session started (so the handler does not return first and
        let the library close with 1000 instead)."""
        if self._closing is not None:
            await self._closing

    def _send_live(self, event_id: EventId, message: str, created_at_ms: int) -> None:
        if event_id <= self.position:
            return
        if self._write(message):
            self.position = event_id
            self._metrics.events_delivered.labels("live").inc()
            latency_ms = protocol.now_ms() - created_at_ms
            self._metrics.delivery_latency.observe(max(latency_ms, 0) / 1000)

    def _write(self, message: str) -> bool:
        if self.websocket.transport.get_write_buffer_size() > self._send_buffer_bytes:
            self._slow_consumer("slow consumer: unread data passed the send buffer")
            return False
        broadcast([self.websocket], message)
        return True

    def _slow_consumer(self, reason: str) -> None:
        self._metrics.slow_consumer_closes.inc()
        self.close(SLOW_CONSUMER, reason)
