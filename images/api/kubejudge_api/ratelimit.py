"""Submission rate limits: a fixed window counter in Redis, shared by every api replica, per
JWT user and, for callers without one, per client address.

A request that would cross the limit is refused without being counted, so a client that
backs off for `Retry-After` seconds always gets through.

The client address is the peer's, or, when the peer is one of `trusted_proxies`, the
right-most address in X-Forwarded-For that is not a trusted proxy (uvicorn's
ProxyHeadersMiddleware, installed by the app): a header from anyone else is ignored, and the
entries a client writes itself, left of its own, are never read. An IPv6 client counts per
/64, the block one subscriber usually holds.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

# KEYS: counter. ARGV: n, limit, window seconds. Returns the new count, or -1 when refused.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return -1
end
local now = redis.call('INCRBY', KEYS[1], ARGV[1])
if now == tonumber(ARGV[1]) then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return now
"""
# Sent by its digest (redis-py loads it again on NOSCRIPT, after a Redis restart).
_take = AsyncScript(None, _TAKE.encode())

IPV6_SUBSCRIBER_PREFIX = 64


@dataclass(frozen=True, slots=True)
class Refused:
    retry_after_s: int


async def take(
    redis: Redis, *, counter: Callable[[int], str], n: int, limit: int, window_s: int
) -> Refused | None:
    """Count `n` submissions in `counter(window)`; a `Refused` with the wait when over."""
    now = time.time()
    window = int(now // window_s)
    used = await _take(keys=[counter(window)], args=[n, limit, window_s], client=redis)
    if int(used) >= 0:
        return None
    return Refused(retry_after_s=max(1, int((window + 1) * window_s - now + 0.999)))


def client_key(host: str) -> str:
    """What an anonymous caller is counted under: its IPv4 address or its IPv6 /64."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an IP (a Unix socket's peer): one counter for it
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_SUBSCRIBER_PREFIX), strict=False))
    return str(address)
