"""A user's event feed: a bounded history stream for replay plus a pub/sub channel for live
delivery, written together in one atomic step so no device can see one without the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from kubejudge import protocol
from kubejudge.replies import as_text

# publish_event(verdict_channel, token, history, channel, event, history_length) -> event id:
# append the event to the user's history and broadcast it on the user's channel, then wake the
# submission's `wait=true` requests. Without a history (an anonymous submission has no feed) it
# only wakes them and returns false. A Lua function, so that a script which must do more in the
# same atomic step can call it (queue's publish-then-ack). The pub/sub payload is the history
# entry id and the event JSON, separated by a newline, so gateways learn the id without a
# second round trip.
PUBLISH_LUA = """
local function publish_event(verdict_channel, token, history, channel, event, history_length)
  local id = false
  if history then
    id = redis.call('XADD', history, 'MAXLEN', '~', history_length, '*', 'event', event)
    redis.call('PUBLISH', channel, id .. '\\n' .. event)
  end
  redis.call('PUBLISH', verdict_channel, token)
  return id
end
"""
# KEYS and ARGV: those of a `Publication`.
_PUBLISH = (
    PUBLISH_LUA + "return publish_event(KEYS[1], ARGV[1], KEYS[2], KEYS[3], ARGV[2], ARGV[3])"
)


@dataclass(frozen=True, slots=True)
class Publication:
    """One event as `publish_event`'s arguments: keys (verdict channel, then the user's history
    and channel) and values (token, then the event JSON and the history length)."""

    keys: tuple[str, ...]
    args: tuple[str, ...]


def publication(*, user_id: str | None, event: protocol.Event, history_length: int) -> Publication:
    if user_id is None:
        return Publication(keys=(protocol.verdict_channel(event.token),), args=(event.token,))
    return Publication(
        keys=(
            protocol.verdict_channel(event.token),
            protocol.user_history(user_id),
            protocol.user_channel(user_id),
        ),
        args=(event.token, event.model_dump_json(), str(history_length)),
    )


async def publish(
    redis: Redis, *, user_id: str | None, event: protocol.Event, history_length: int
) -> str | None:
    """Record and broadcast `event`; returns its event id (None for anonymous submissions,
    which only wake `wait=true` requests)."""
    return await send(
        redis, publication(user_id=user_id, event=event, history_length=history_length)
    )


async def send(redis: Redis, outgoing: Publication) -> str | None:
    """`publish` of an event already made a `Publication`."""
    event_id = await redis.eval(_PUBLISH, len(outgoing.keys), *outgoing.keys, *outgoing.args)
    if not event_id:
        return None
    return as_text(event_id)


def add_publish(pipe: Pipeline, outgoing: Publication) -> None:
    """`publish` as one more command of `pipe`, to share its round trip."""
    pipe.eval(_PUBLISH, len(outgoing.keys), *outgoing.keys, *outgoing.args)


def parse_live(payload: bytes | str) -> tuple[str, protocol.Event]:
    """Split a user-channel message into (event id, event)."""
    text = as_text(payload)
    event_id, _, body = text.partition("\n")
    return event_id, protocol.Event.model_validate_json(body)
