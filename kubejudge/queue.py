"""The judge queue: one Redis stream per worker pool, read through one consumer group.

Delivery is at-least-once. The api (and its reconciler) enqueue; workers read, reclaim from
dead workers, acknowledge and dead-letter. A token is in a stream at most once at a time: the
`enqueued` marker is set with the entry and removed with the acknowledgement, atomically.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from kubejudge import events, protocol
from kubejudge.replies import as_text

# KEYS: stream, marker. ARGV: token, enqueued_at_ms.
# Returns the new entry id, or nil when the token is already waiting or being judged.
_ENQUEUE = """
if redis.call('SET', KEYS[2], ARGV[1], 'NX') then
  return redis.call('XADD', KEYS[1], '*', 'token', ARGV[1], 'enqueued_at_ms', ARGV[2])
end
return false
"""


# ack_entry(stream, marker, group, entry id): acknowledge and drop the entry, and free the
# token for a later enqueue.
_ACK_LUA = """
local function ack_entry(stream, marker, group, entry_id)
  redis.call('XACK', stream, group, entry_id)
  redis.call('XDEL', stream, entry_id)
  redis.call('DEL', marker)
end
"""
# KEYS: stream, marker. ARGV: group, entry id.
_ACK = _ACK_LUA + "ack_entry(KEYS[1], KEYS[2], ARGV[1], ARGV[2])\nreturn 1"
# KEYS: stream, marker, published marker, then the event's (events.Publication). ARGV: group,
# entry id, the published marker's lifetime (s), then the event's. The outcome's event, then the
# ack: an error ends a script where it happens, so an entry is never acked without its event
# having gone out. A submission has one verdict, so a second run of the script (a retry after
# its reply was lost) only acks: the marker, written with the event, says it went out. If Redis
# loses the event, it loses the marker with it, and the retry publishes again.
_PUBLISH_AND_ACK = (
    events.PUBLISH_LUA
    + _ACK_LUA
    + """
local id = false
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', ARGV[3]) then
  id = publish_event(KEYS[4], ARGV[4], KEYS[5], KEYS[6], ARGV[5], ARGV[6])
end
ack_entry(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
return id
"""
)
# Longer than any retry of a lost reply takes (seconds), short enough to cost little memory.
PUBLISHED_MARKER_TTL_S = 600

# KEYS: stream. ARGV: group, entry id, consumer.
# Drop the entry only while `consumer` still holds it, and leave the marker to whichever entry
# of the token is still being judged. Returns 1 if dropped.
_DROP_IF_HELD = """
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #pending == 0 or pending[1][2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS: stream, marker, dead-letter stream. ARGV: group, entry id, token, reason, at_ms.
_DEAD_LETTER = """
redis.call('XADD', KEYS[3], '*', 'token', ARGV[3], 'entry_id', ARGV[2], 'reason', ARGV[4],
           'failed_at_ms', ARGV[5])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('DEL', KEYS[2])
return 1
"""

# KEYS: stream, heartbeat of the entry's owner. ARGV: group, new consumer, entry id, owner.
# Claims the entry only if `owner` still holds it and its heartbeat is gone: a live worker can
# judge for as long as it needs, whatever the idle time. Returns the entry's fields, or nil.
_RECLAIM = """
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[4] then return false end
local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3])
if #claimed == 0 or not claimed[1][2] then return false end
return claimed[1][2]
"""


@dataclass(frozen=True, slots=True)
class Delivery:
    """A queue entry handed to one worker; it stays pending until acked or dead-lettered."""

    entry_id: str
    entry: protocol.QueueEntry
    reclaimed: bool = False  # taken over from a worker whose heartbeat had gone


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
    return as_text(entry_id) if entry_id else None


async def backlog(redis: Redis, pool: str) -> Backlog:
    """Waiting plus in-flight work of one pool, from the consumer group's own counters."""
    try:
        groups = await redis.xinfo_groups(protocol.queue_stream(pool))
    except ResponseError:  # no stream yet: nothing was ever enqueued
        return Backlog(waiting=0, pending=0)
    for group in groups:
        if as_text(group["name"]) == protocol.QUEUE_GROUP:
            return Backlog(waiting=int(group.get("lag") or 0), pending=int(group["pending"]))
    return Backlog(waiting=await redis.xlen(protocol.queue_stream(pool)), pending=0)


async def oldest_waiting_age_ms(redis: Redis, pool: str) -> int:
    """How long the first entry no worker has been handed yet has waited; 0 when none waits.

    An entry id's first part is the millisecond Redis added it, so the age needs no field read.
    """
    stream = protocol.queue_stream(pool)
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:  # no stream yet: nothing was ever enqueued
        return 0
    start = "-"  # no group yet: every entry waits
    for group in groups:
        if as_text(group["name"]) == protocol.QUEUE_GROUP:
            start = "(" + as_text(group["last-delivered-id"])  # exclusive: the next undelivered
    first = await redis.xrange(stream, min=start, max="+", count=1)
    if not first:
        return 0
    enqueued_ms = int(as_text(first[0][0]).split("-", 1)[0])
    return max(0, protocol.now_ms() - enqueued_ms)


async def read(
    redis: Redis, *, pool: str, consumer: str, count: int, block_ms: int
) -> list[Delivery]:
    """New entries for `consumer`, waiting up to `block_ms` for one to arrive."""
    try:
        reply = await redis.xreadgroup(*_read_args(pool, consumer), count=count, block=block_ms)
    except ResponseError as error:
        if "NOGROUP" not in str(error):
            raise
        # Redis came back without its data: the reconciler refills the stream from
        # PostgreSQL, and a group read from the start of it delivers all of that.
        await ensure_group(redis, pool)
        return []
    return deliveries(reply)


def add_read(pipe: Pipeline, *, pool: str, consumer: str, count: int) -> None:
    """`read` without waiting, as one more command of `pipe` (a worker sends it with its
    announcements); its reply goes to `deliveries`."""
    pipe.xreadgroup(*_read_args(pool, consumer), count=count)


def deliveries(reply: list | None) -> list[Delivery]:
    """The deliveries in an XREADGROUP reply."""
    found = []
    for _, entries in reply or []:
        for entry_id, fields in entries:
            if fields:  # a deleted entry's id can linger in a reply with no fields
                found.append(Delivery(as_text(entry_id), _entry(fields)))
    return found


def _read_args(pool: str, consumer: str) -> tuple[str, str, dict[str, str]]:
    return protocol.QUEUE_GROUP, consumer, {protocol.queue_stream(pool): ">"}


async def reclaim(
    redis: Redis, *, pool: str, consumer: str, count: int, held: Collection[str] = ()
) -> list[Delivery]:
    """Take over up to `count` pending entries whose owners' heartbeats have expired, and take
    back those of our own that no task of ours holds (`held`: the entry ids in hand): their
    ack was lost with Redis, or they were left after repeated infrastructure errors. A live
    owner's heartbeat would keep anyone else from them for ever."""
    stream = protocol.queue_stream(pool)
    try:
        pending = await redis.xpending_range(
            stream, protocol.QUEUE_GROUP, min="-", max="+", count=100
        )
    except ResponseError:  # no stream or group yet
        return []
    claimed: list[Delivery] = []
    for item in pending:
        if len(claimed) >= count:
            break
        owner, entry_id = as_text(item["consumer"]), as_text(item["message_id"])
        if owner == consumer:
            if entry_id in held:
                continue
            taken = await redis.xclaim(stream, protocol.QUEUE_GROUP, consumer, 0, [entry_id])
            fields = taken[0][1] if taken else None
        else:
            flat = await redis.eval(
                _RECLAIM,
                2,
                stream,
                protocol.worker_heartbeat(pool, owner),
                protocol.QUEUE_GROUP,
                consumer,
                entry_id,
                owner,
            )
            fields = dict(zip(flat[::2], flat[1::2], strict=True)) if flat else None
        if fields:
            claimed.append(Delivery(entry_id, _entry(fields), reclaimed=True))
    return claimed


async def ack(redis: Redis, *, pool: str, delivery: Delivery) -> None:
    """Done: the verdict is in PostgreSQL and published. Frees the token's enqueue marker."""
    await redis.eval(
        _ACK,
        2,
        protocol.queue_stream(pool),
        protocol.enqueued_marker(delivery.entry.token),
        protocol.QUEUE_GROUP,
        delivery.entry_id,
    )


def add_publish_and_ack(
    pipe: Pipeline, *, pool: str, delivery: Delivery, outgoing: events.Publication
) -> None:
    """Publish the event that reports the entry's outcome, then `ack`, in one atomic step
    added to `pipe` (a worker sends it with its heartbeat, in one round trip)."""
    pipe.eval(
        _PUBLISH_AND_ACK,
        3 + len(outgoing.keys),
        protocol.queue_stream(pool),
        protocol.enqueued_marker(delivery.entry.token),
        protocol.verdict_published(delivery.entry.token),
        *outgoing.keys,
        protocol.QUEUE_GROUP,
        delivery.entry_id,
        str(PUBLISHED_MARKER_TTL_S),
        *outgoing.args,
    )


async def drop_if_held(redis: Redis, *, pool: str, delivery: Delivery, consumer: str) -> bool:
    """A fenced-out attempt is done with its entry. If another worker reclaimed the entry, it
    is theirs to ack; if it is still ours, it was a duplicate entry of the token and nobody
    else ever will (its owner is alive), so drop it. True if dropped."""
    dropped = await redis.eval(
        _DROP_IF_HELD,
        1,
        protocol.queue_stream(pool),
        protocol.QUEUE_GROUP,
        delivery.entry_id,
        consumer,
    )
    return bool(dropped)


async def dead_letter(redis: Redis, *, pool: str, delivery: Delivery, reason: str) -> None:
    """Give up on an entry: copy it to the pool's dead-letter stream and acknowledge it."""
    await redis.eval(
        _DEAD_LETTER,
        3,
        protocol.queue_stream(pool),
        protocol.enqueued_marker(delivery.entry.token),
        protocol.dead_letter_stream(pool),
        protocol.QUEUE_GROUP,
        delivery.entry_id,
        delivery.entry.token,
        reason,
        str(protocol.now_ms()),
    )


def _entry(fields: dict) -> protocol.QueueEntry:
    return protocol.QueueEntry.from_fields({as_text(k): as_text(v) for k, v in fields.items()})
