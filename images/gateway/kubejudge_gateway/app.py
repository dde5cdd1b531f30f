"""The gateway: `/ws` for sockets, and `/healthz`, `/readyz`, `/metrics` on the same port.

    ws://HOST:2359/ws?token=JWT&last_event_id=ID&pools=1

A connection is authenticated from its `token` (closed 4401 if bad or expired, and 4401 when
it expires later: the client reconnects with a fresh token), joins its
user's fan-out in the hub, is sent what it missed since `last_event_id` (or `resync`, or a
`welcome` with the current position when it gave no id), and then gets live events. With
`pools=1` (the demo page) it also gets the worker pools' view (`pools`) once live and whenever
it changes; other clients are not sent it. The only
client message is `{"type":"ping"}` (answered `pong`); anything else gets `error`.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import time
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from kubejudge import auth, protocol
from kubejudge_gateway import messages, origins, replay
from kubejudge_gateway.hub import FeedUnavailable, Hub
from kubejudge_gateway.metrics import GatewayMetrics
from kubejudge_gateway.poolfeed import PoolFeed
from kubejudge_gateway.session import Session
from kubejudge_gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

BAD_TOKEN = 4401


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.metrics = GatewayMetrics()
        self.hub = Hub(redis_url=settings.redis_url, metrics=self.metrics)
        self.history = Redis(
            connection_pool=BlockingConnectionPool.from_url(
                settings.redis_url, max_connections=settings.gateway_history_pool_size
            )
        )
        self.pool_feed = PoolFeed(
            redis=self.history,
            pools=list(settings.pools),
            interval_s=settings.gateway_pool_view_interval_s,
        )
        self.draining = False
        self._hub_task: asyncio.Task[None] | None = None
        self._pool_task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        return self.hub.online and not self.draining

    @property
    def hub_task(self) -> asyncio.Task[None]:
        if self._hub_task is None:
            raise RuntimeError("expected a started gateway (use `async with`), got none")
        return self._hub_task

    async def __aenter__(self) -> Gateway:
        self._hub_task = asyncio.create_task(self.hub.run())
        self._pool_task = asyncio.create_task(self.pool_feed.run())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.hub.stop()
        self.hub_task.cancel()
        if self._pool_task is not None:
            self._pool_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.hub_task
        with contextlib.suppress(asyncio.CancelledError):
            await self._pool_task
        await self.history.aclose()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Serve the probes and metrics; let only allowed origins on /ws through."""
        path = urlsplit(request.path).path
        if path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if path == "/readyz":
            if self.ready:
                return connection.respond(http.HTTPStatus.OK, "ready\n")
            reason = "draining" if self.draining else "no Redis pub/sub connection"
            return connection.respond(http.HTTPStatus.SERVICE_UNAVAILABLE, f"{reason}\n")
        if path == "/metrics":
            body = self.metrics.exposition()
            headers = Headers(
                [("Content-Type", CONTENT_TYPE_LATEST), ("Content-Length", str(len(body)))]
            )
            return Response(http.HTTPStatus.OK, "OK", headers, body)
        if path != "/ws":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "expected /ws\n")
        if not origins.allowed(
            request.headers.get("Origin"),
            host=request.headers.get("Host"),
            allow_list=self.settings.gateway_allowed_origins,
        ):
            return connection.respond(http.HTTPStatus.FORBIDDEN, "origin not allowed\n")
        return None

    async def handle(self, websocket: ServerConnection) -> None:
        query = parse_qs(urlsplit(websocket.request.path if websocket.request else "").query)
        try:
            user = auth.verify(_first(query, "token"), secret=self.settings.jwt_secret)
        except auth.InvalidToken:
            self.metrics.auth_failures.inc()
            await websocket.close(BAD_TOKEN, "bad or expired token")
            return
        try:
            last_text = _first(query, "last_event_id")
            last = replay.EventId.parse(last_text) if last_text else None
        except ValueError as error:
            await websocket.send(messages.error(str(error)))
            await websocket.close(CloseCode.POLICY_VIOLATION, "bad last_event_id")
            return
        if self.hub.local_sockets(user.id) >= self.settings.gateway_max_sockets_per_user:
            await websocket.close(CloseCode.POLICY_VIOLATION, "too many sockets for this user")
            return
        session = Session(
            websocket,
            send_buffer_bytes=self.settings.gateway_send_buffer_bytes,
            hold_limit=self.settings.gateway_replay_hold_events,
            metrics=self.metrics,
        )
        self.metrics.connections.inc()
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, (user.expires_at or 0) - time.time()),
            session.close,
            BAD_TOKEN,
            "token expired",
        )
        try:
            await self.hub.join(user.id, session)
            await self._start(session, user_id=user.id, last=last)
            if _first(query, "pools") == "1":
                self.pool_feed.join(session)
            await self._answer_client(session)
        except (FeedUnavailable, RedisError) as error:
            log.warning("closing a socket of %s: %s", user.id, error)
            session.close(CloseCode.GOING_AWAY, "gateway has no event feed; reconnect")
            await session.closed()
        except ConnectionClosed:
            pass
        finally:
            expiry.cancel()
            self.pool_feed.leave(session)
            self.hub.leave(user.id, session)
            self.metrics.connections.dec()

    async def _start(self, session: Session, *, user_id: str, last: replay.EventId | None) -> None:
        history = await replay.read(
            self.history, user_id=user_id, after=last, limit=self.settings.gateway_replay_limit
        )
        if last is None:
            await session.start(
                first=messages.welcome(history.top), position=history.top, replay=[]
            )
            return
        self.metrics.resumes.inc()
        planned = replay.plan(last=last, history=history, limit=self.settings.gateway_replay_limit)
        if isinstance(planned, replay.Resync):
            self.metrics.resyncs.inc()
            await session.start(
                first=messages.resync(planned.position), position=planned.position, replay=[]
            )
        else:
            await session.start(first=None, position=last, replay=planned)

    async def _answer_client(self, session: Session) -> None:
        async for message in session.websocket:
            if isinstance(message, bytes):
                self._refuse(session, "expected a JSON text message, got binary")
                continue
            try:
                protocol.ClientMessage.model_validate_json(message)
            except ValidationError:
                self._refuse(session, 'expected {"type":"ping"}')
                continue
            session.reply(messages.pong())

    def _refuse(self, session: Session, reason: str) -> None:
        self.metrics.client_errors.inc()
        session.reply(messages.error(reason))


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""
