"""How the load test talks to kubejudge: JWTs, Judge0 POST/GET over HTTP, and one WebSocket per
user on the gateway, reconnecting with `last_event_id` so no verdict is missed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from kubejudge import auth
from kubejudge.protocol import now_ms

log = logging.getLogger("kubejudge_dev.loadtest")

# Judge0's final statuses are every id above 2 (1 In Queue, 2 Processing).
FINAL_STATUS_MIN = 3


@dataclass(frozen=True, slots=True)
class Verdict:
    token: str
    status_id: int | None
    verdict_at_ms: int  # when the verdict event was published (its history id's time part)
    delivered_at_ms: int  # when it reached this socket


async def user_token(http: httpx.AsyncClient, *, user_id: str, secret: str | None) -> str:
    """A bearer JWT: minted with the shared secret, else from the api's dev token endpoint."""
    if secret is not None:
        return auth.issue(secret=secret, user_id=user_id, ttl_s=3600)
    response = await http.post("/auth/dev-token", json={"user_id": user_id})
    response.raise_for_status()
    return str(response.json()["token"])


async def submit(
    http: httpx.AsyncClient, *, jwt: str, source: str, language_id: int, expected: str
) -> httpx.Response:
    body = {"source_code": source, "language_id": language_id, "expected_output": expected}
    return await http.post(
        "/submissions",
        params={"base64_encoded": "false", "wait": "false"},
        json=body,
        headers={"Authorization": f"Bearer {jwt}"},
    )


async def final_status(http: httpx.AsyncClient, *, jwt: str, token: str) -> int | None:
    """The submission's status id if it is final, else None (used only to count lost verdicts)."""
    response = await http.get(
        f"/submissions/{token}",
        params={"fields": "status_id,status"},
        headers={"Authorization": f"Bearer {jwt}"},
    )
    if response.status_code != 200:
        return None
    status_id = _status_id(response.json())
    return status_id if status_id is not None and status_id >= FINAL_STATUS_MIN else None


def parse_verdict(raw: str | bytes, *, received_at_ms: int) -> tuple[str | None, Verdict | None]:
    """(event id to resume from, the verdict it carries if any) for one server message."""
    try:
        message = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(message, dict):
        return None, None
    event_id = message.get("id") if isinstance(message.get("id"), str) else None
    data = message.get("data")
    if message.get("type") != "verdict" or event_id is None or not isinstance(data, dict):
        return event_id, None
    token = data.get("token")
    published_ms, _, _ = event_id.partition("-")
    if not isinstance(token, str) or not published_ms.isdigit():
        return event_id, None
    verdict = Verdict(
        token=token,
        status_id=_status_id(data),
        verdict_at_ms=int(published_ms),
        delivered_at_ms=received_at_ms,
    )
    return event_id, verdict


async def listen(
    *,
    gateway_url: str,
    jwt: str,
    on_verdict: Callable[[Verdict], None],
    on_resync: Callable[[], None],
    ready: asyncio.Event,
    stop: Awaitable[None],
) -> int:
    """Hold one user's socket until `stop` completes, resuming after drops; returns reconnects."""
    last_event_id: str | None = None
    reconnects = -1
    backoff_s = 0.2
    stopping = asyncio.ensure_future(stop)
    while not stopping.done():
        reconnects += 1
        query = {"token": jwt} | ({"last_event_id": last_event_id} if last_event_id else {})
        try:
            async with connect(f"{gateway_url}/ws?{urlencode(query)}", open_timeout=10) as ws:
                ready.set()
                backoff_s = 0.2
                while True:
                    receive = asyncio.ensure_future(ws.recv())
                    done, _ = await asyncio.wait(
                        {receive, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receive not in done:
                        receive.cancel()
                        with contextlib.suppress(asyncio.CancelledError, WebSocketException):
                            await receive
                        return reconnects
                    raw = receive.result()
                    event_id, verdict = parse_verdict(raw, received_at_ms=now_ms())
                    if event_id is not None:
                        last_event_id = event_id
                    if verdict is not None:
                        on_verdict(verdict)
                    elif _is_resync(raw):
                        on_resync()
        except (OSError, WebSocketException, TimeoutError) as error:
            log.warning("socket dropped (%s); reconnecting in %.1f s", error, backoff_s)
            await asyncio.sleep(backoff_s)
            backoff_s = min(backoff_s * 2, 3.0)
    return reconnects


def _is_resync(raw: str | bytes) -> bool:
    with contextlib.suppress(ValueError, AttributeError):
        return json.loads(raw).get("type") == "resync"
    return False


def _status_id(data: dict[str, object]) -> int | None:
    status = data.get("status")
    if isinstance(status, dict) and isinstance(status.get("id"), int):
        return int(status["id"])
    status_id = data.get("status_id")
    return status_id if isinstance(status_id, int) else None
