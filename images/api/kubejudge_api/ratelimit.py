"""Per-user submission rate limit: a fixed window counter in Redis, shared by every api replica.

A request that would cross the limit is refused without being counted, so a client that
backs off for `Retry-After` seconds always gets through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from kubejudge import protocol

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


@dataclass(frozen=True, slots=True)
class Refused:
    retry_after_s: int


async def take(redis: Redis, *, user_id: str, n: int, limit: int, window_s: int) -> Refused | None:
    """Count `n` submissions for `user_id`; a `Refused` with the wait when over the limit."""
    now = time.time()
    window = int(now // window_s)
    used = await redis.eval(
        _TAKE, 1, protocol.rate_limit_counter(user_id, window), n, limit, window_s
    )
    if int(used) >= 0:
        return None
    return Refused(retry_after_s=max(1, int((window + 1) * window_s - now + 0.999)))
