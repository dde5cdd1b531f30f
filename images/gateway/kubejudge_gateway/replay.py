"""What a reconnecting device missed: read the user's history stream after its last event id
and decide whether it still reaches back that far.

History is trimmed from its head (XADD MAXLEN ~), so every entry after the device's last id is
still there exactly when nothing after that id was trimmed. Redis does not record what trimming
removed, so that is decided from the stream's shape: nothing was ever trimmed (entries added ==
length), or the oldest entry left is at or before the id right after the device's last id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from redis.asyncio import Redis

from kubejudge import protocol
from kubejudge.replies import as_text


class EventId(NamedTuple):
    """A history stream entry id ("<ms>-<seq>"); tuples order the way Redis orders ids."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, text: str) -> EventId:
        ms, dash, seq = text.partition("-")
        if not (dash and ms.isdigit() and seq.isdigit() and len(text) <= 41):
            raise ValueError(f"expected an event id like 1700000000000-0, got {text[:50]!r}")
        return cls(int(ms), int(seq))

    def successor(self) -> EventId:
        return EventId(self.ms, self.seq + 1)

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ORIGIN = EventId(0, 0)  # the position before any event


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    id: EventId
    event: protocol.Event


@dataclass(frozen=True, slots=True)
class History:
    """The shape of a user's history stream, and the entries after the device's last id."""

    exists: bool
    top: EventId  # the newest id the stream ever generated (ORIGIN when it does not exist)
    first: EventId | None  # the oldest entry still held
    length: int
    entries_added: int
    after: list[HistoryEntry]  # entries after the device's last id, oldest first


class Resync(NamedTuple):
    """The history no longer covers what the device missed: it must refetch over HTTP."""

    position: EventId  # where it stands once it has refetched


def plan(*, last: EventId, history: History, limit: int) -> list[HistoryEntry] | Resync:
    """The events to replay to a device whose last event was `last`, or `Resync`."""
    if not history.exists:
        # An empty feed is complete only for a device that saw nothing; otherwise the stream
        # was lost (Redis without persistence) or the id is from somewhere else.
        return [] if last == ORIGIN else Resync(ORIGIN)
    untrimmed = history.entries_added == history.length
    covered = untrimmed or (history.first is not None and history.first <= last.successor())
    if last > history.top or not covered or len(history.after) > limit:
        return Resync(history.top)
    return history.after


async def read(redis: Redis, *, user_id: str, after: EventId | None, limit: int) -> History:
    """One consistent snapshot (MULTI) of the user's history; `after=None` reads only its shape."""
    key = protocol.user_history(user_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xinfo_stream(key)
        if after is not None:
            pipe.xrange(key, min=f"({after}", max="+", count=limit + 1)
        results = await pipe.execute(raise_on_error=False)
    info = results[0]
    if isinstance(info, Exception):
        if "no such key" not in str(info):
            raise info
        return History(exists=False, top=ORIGIN, first=None, length=0, entries_added=0, after=[])
    first = info.get("first-entry")
    entries = results[1] if after is not None else []
    return History(
        exists=True,
        top=EventId.parse(as_text(info["last-generated-id"])),
        first=EventId.parse(as_text(first[0])) if first else None,
        length=int(info["length"]),
        entries_added=int(info["entries-added"]),
        after=[
            HistoryEntry(
                id=EventId.parse(as_text(entry_id)),
                event=protocol.Event.model_validate_json(fields[b"event"]),
            )
            for entry_id, fields in entries
        ],
    )
