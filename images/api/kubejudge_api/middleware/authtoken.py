"""Judge0's X-Auth-Token: with KUBEJUDGE_AUTH_TOKEN set (space-separated tokens), every route
but the probes, metrics, docs, the demo page and `/authenticate` answers 401 unless the
request carries a valid token in the `X-Auth-Token` header or query parameter, or a bearer JWT
that verifies (so the demo page works with user tokens alone).

Any other `Authorization` header (another scheme, junk, empty, a forged or expired JWT) counts
for nothing here: routes that never look at the caller must not answer it.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from kubejudge import auth

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


def given_token(headers: Headers, query: bytes) -> str | None:
    header = headers.get("x-auth-token")
    if header is not None:
        return header
    values = parse_qs(query.decode("latin-1")).get("X-Auth-Token")
    return values[0] if values else None


def bearer_user(header: str | None, *, secret: str) -> auth.User | None:
    """The user of an `Authorization: Bearer <JWT>` header whose JWT verifies, else None."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        return auth.verify(token.strip(), secret=secret)
    except auth.InvalidToken:
        return None


class AuthTokenMiddleware:
    def __init__(self, app: ASGIApp, *, tokens: str | None, jwt_secret: str) -> None:
        self.app = app
        self.tokens = tokens
        self.jwt_secret = jwt_secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.tokens or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        # The first of repeated headers, as the routes read them.
        headers = Headers(scope=scope)
        if valid(given_token(headers, scope.get("query_string", b"")), self.tokens) or (
            bearer_user(headers.get("authorization"), secret=self.jwt_secret) is not None
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
