"""A user's event feed: a bounded history stream for replay plus a pub/sub channel for live
delivery, written together in one atomic step so no device can see one without the other.
"""

from __future__ import annotations

from redis.asyncio import Redis

from kubejudge import protocol

# KEYS: history, user channel, verdict channel. ARGV: event JSON, history length, token.
# The pub/sub payload is the history entry id and the event JSON, separated by a newline,
# so gateways learn the id without a second round trip.
_PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'event', ARGV[1])
redis.call('PUBLISH', KEYS[2], id .. '\\n' .. ARGV[1])
redis.call('PUBLISH', KEYS[3], ARGV[3])
return id
"""


async def publish(
    redis: Redis, *, user_id: str | None, event: protocol.Event, history_length: int
) -> str | None:
    """Record and broadcast `event`; returns its event id (None for anonymous submissions,
    which only wake `wait=true` requests)."""
    if user_id is None:
        await redis.publish(protocol.verdict_channel(event.token), event.token)
        return None
    event_id = await redis.eval(
        _PUBLISH,
        3,
        protocol.user_history(user_id),
        protocol.user_channel(user_id),
        protocol.verdict_channel(event.token),
        event.model_dump_json(),
        str(history_length),
        event.token,
    )
    return event_id.decode() if isinstance(event_id, bytes) else event_id


def parse_live(payload: bytes | str) -> tuple[str, protocol.Event]:
    """Split a user-channel message into (event id, event)."""
    text = payload.decode() if isinstance(payload, bytes) else payload
    event_id, _, body = text.partition("\n")
    return event_id, protocol.Event.model_validate_json(body)
