"""The judge queue: one Redis stream per worker pool, read through one consumer group.

Delivery is at-least-once. The api (and its reconciler) enqueue; workers read, reclaim from
dead workers, acknowledge and dead-letter. A token is in a stream at most once at a time: the
`enqueued` marker is set with the entry and removed with the acknowledgement, atomically.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from kubejudge import protocol

# KEYS: stream, marker. ARGV: token, enqueued_at_ms.
# Returns the new entry id, or nil when the token is already waiting or being judged.
_ENQUEUE = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then
  return redis.call('XADD', KEYS[1], '*', 'token', ARGV[1], 'enqueued_at_ms', ARGV[2])
end
return false
"""


@dataclass(frozen=True, slots=True)
class Backlog:
    waiting: int  # entries not yet delivered to any worker
    pending: int  # delivered, not yet acknowledged (being judged, or owned by a dead worker)

    @property
    def total(self) -> int:
        return self.waiting + self.pending


async def ensure_group(redis: Redis, pool: str) -> None:
    """Create the pool's stream and consumer group if missing (idempotent)."""
    try:
        await redis.xgroup_create(
            protocol.queue_stream(pool), protocol.QUEUE_GROUP, id="0", mkstream=True
        )
    except ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise


async def enqueue(redis: Redis, *, pool: str, token: str) -> str | None:
    """Add `token` to `pool`'s stream unless it is already there; the new entry id or None."""
    entry = protocol.QueueEntry(token=token)
    entry_id = await redis.eval(
        _ENQUEUE,
        2,
        protocol.queue_stream(pool),
        protocol.enqueued_marker(token),
        token,
        str(entry.enqueued_at_ms),
    )
    return _text(entry_id) if entry_id else None


async def backlog(redis: Redis, pool: str) -> Backlog:
    """Waiting plus in-flight work of one pool, from the consumer group's own counters."""
    try:
        groups = await redis.xinfo_groups(protocol.queue_stream(pool))
    except ResponseError:  # no stream yet: nothing was ever enqueued
        return Backlog(waiting=0, pending=0)
    for group in groups:
        if _text(group["name"]) == protocol.QUEUE_GROUP:
            return Backlog(waiting=int(group.get("lag") or 0), pending=int(group["pending"]))
    return Backlog(waiting=await redis.xlen(protocol.queue_stream(pool)), pending=0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
