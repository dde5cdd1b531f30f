"""Judge0's X-Auth-Token: with KUBEJUDGE_AUTH_TOKEN set (space-separated tokens), every route
but the probes, metrics, docs, the demo page and `/authenticate` answers 401 without a valid
token in the `X-Auth-Token` header or query parameter.

A request carrying `Authorization: Bearer` passes here; the JWT itself is verified by the
route (401 when bad), so the demo page works with user tokens alone.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json",
                        "/docs/oauth2-redirect", "/redoc", "/authenticate"})  # fmt: skip
OPEN_PREFIXES = ("/static/",)


def valid(given: str | None, configured: str | None) -> bool:
    """Is `given` one of the configured tokens (always, when none are configured)?"""
    if not configured:
        return True
    return given is not None and any(
        hmac.compare_digest(given.encode(), token.encode()) for token in configured.split()
    )


def given_token(headers: dict[bytes, bytes], query: bytes) -> str | None:
    header = headers.get(b"x-auth-token")
    if header is not None:
        return header.decode("latin-1")
    values = parse_qs(query.decode("latin-1")).get("X-Auth-Token")
    return values[0] if values else None


class AuthTokenMiddleware:
    def __init__(self, app: ASGIApp, *, tokens: str | None) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"authorization" in headers or valid(
            given_token(headers, scope.get("query_string", b"")), self.tokens
        ):
            await self.app(scope, receive, send)
            return
        body = json.dumps({"error": "authentication failed: missing or wrong X-Auth-Token"})
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
