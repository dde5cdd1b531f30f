"""Which web pages may open a socket: the defence against cross-site WebSocket hijacking.

A browser always sends `Origin` on a WebSocket handshake; other clients (CLIs, servers, tests)
need not, and carry no ambient credentials a foreign page could ride on, so a missing Origin
is admitted. With no allow-list, only pages served from the gateway's own host name (any port,
any scheme) are admitted, which is what the dev page at http://HOST:2358 needs.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def allowed(origin: str | None, *, host: str | None, allow_list: list[str]) -> bool:
    if origin is None:
        return True
    if allow_list:
        return "*" in allow_list or origin.rstrip("/") in {o.rstrip("/") for o in allow_list}
    if host is None:
        return False
    try:
        origin_host = urlsplit(origin).hostname
        request_host = urlsplit(f"//{host}").hostname
    except ValueError:  # e.g. a malformed IPv6 literal
        return False
    return origin_host is not None and origin_host == request_host
