"""What the gateway writes to a socket: `protocol.ServerMessage` JSON, rendered once per event
and shared by every socket it goes to."""

from __future__ import annotations

from kubejudge import protocol
from kubejudge_gateway.replay import EventId


def event(event_id: EventId, event: protocol.Event) -> str:
    return protocol.ServerMessage.of_event(str(event_id), event).model_dump_json()


def welcome(position: EventId) -> str:
    return protocol.ServerMessage(type="welcome", id=str(position)).model_dump_json()


def resync(position: EventId) -> str:
    return protocol.ServerMessage(type="resync", id=str(position)).model_dump_json()


def pools(states: list[protocol.PoolState]) -> str:
    data = {"pools": [state.model_dump() for state in states]}
    return protocol.ServerMessage(type="pools", data=data).model_dump_json()


def pong() -> str:
    return protocol.ServerMessage(type="pong").model_dump_json()


def error(message: str) -> str:
    return protocol.ServerMessage(type="error", data={"message": message}).model_dump_json()
