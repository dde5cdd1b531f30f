"""Guarantee 3, replay half: a device that reconnects with its last event id gets every event
it missed, once, in order, on any gateway; past the history window it is told to resync."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from kubejudge import protocol


async def test_missed_events_arrive_once_in_order_on_another_gateway(
    gateways, token, ws, publish, recv
) -> None:
    first, second = gateways
    phone = await ws(first, token("alice"))
    laptop = await ws(second, token("alice"))
    await recv(phone)
    await recv(laptop)
    seen = [await publish("alice", token=f"t{n}", kind="status") for n in range(3)]
    last_seen = [(await recv(phone))["id"] for _ in seen][-1]
    assert last_seen == seen[-1]

    first.kill()  # the phone's gateway dies; events go on while the phone is away
    missed = [await publish("alice", token=f"t{n}") for n in range(3, 10)]
    for event_id in [*seen, *missed]:
        assert (await recv(laptop))["id"] == event_id

    phone = await ws(second, token("alice"), last_event_id=last_seen)
    replayed = [await recv(phone) for _ in missed]
    assert [m["id"] for m in replayed] == missed
    assert [m["data"]["token"] for m in replayed] == [f"t{n}" for n in range(3, 10)]
    live = await publish("alice", token="t10")
    assert (await recv(phone))["id"] == live
    with pytest.raises(TimeoutError):
        await recv(phone, timeout_s=0.3)


async def test_events_published_during_the_replay_are_neither_lost_nor_doubled(
    gateways, token, ws, publish, recv
) -> None:
    gateway = gateways[0]
    base = await publish("erin", token="base")
    backlog = [await publish("erin", token=f"b{n}", message="x" * 2000) for n in range(300)]

    async def publish_more() -> list[str]:
        return [await publish("erin", token=f"l{n}") for n in range(100)]

    more = asyncio.create_task(publish_more())
    socket = await ws(gateway, token("erin"), last_event_id=base)
    live = await more
    received = [(await recv(socket))["id"] for _ in range(len(backlog) + len(live))]
    assert received == [*backlog, *live]
    with pytest.raises(TimeoutError):
        await recv(socket, timeout_s=0.3)


async def test_resume_from_the_welcome_position_gets_what_came_after(
    gateways, token, ws, publish, recv
) -> None:
    await publish("fay", token="before")
    socket = await ws(gateways[0], token("fay"))
    welcome = await recv(socket)
    assert welcome["type"] == "welcome"
    await socket.close()
    after = await publish("fay", token="after")
    socket = await ws(gateways[1], token("fay"), last_event_id=welcome["id"])
    message = await recv(socket)
    assert (message["id"], message["data"]["token"]) == (after, "after")


async def test_a_resume_the_trimmed_history_cannot_cover_gets_resync(
    gateways, token, ws, publish, recv, redis: Redis
) -> None:
    old = await publish("gus", token="old")
    for n in range(400):  # MAXLEN ~ trims whole nodes of 100 entries
        await publish("gus", token=f"n{n}")
    history = protocol.user_history("gus")
    await redis.xtrim(history, maxlen=50)
    oldest = (await redis.xrange(history, count=1))[0][0].decode()
    top = (await redis.xrevrange(history, count=1))[0][0].decode()

    socket = await ws(gateways[0], token("gus"), last_event_id=old)
    assert await recv(socket) == {"type": "resync", "id": top, "data": {}}
    live = await publish("gus", token="live")
    assert (await recv(socket))["id"] == live

    # The device whose last event is the one right before the oldest kept misses nothing.
    before_oldest = (await redis.xrevrange(history, max=f"({oldest}", count=1)) or []
    assert before_oldest == []  # trimmed away, so only the ids can tell
    ms, seq = oldest.split("-")
    if seq != "0":
        right_before = f"{ms}-{int(seq) - 1}"
        socket = await ws(gateways[1], token("gus"), last_event_id=right_before)
        assert (await recv(socket))["id"] == oldest


async def test_unknown_ids_and_lost_history_get_resync(gateways, token, ws, publish, recv) -> None:
    socket = await ws(gateways[0], token("hal"), last_event_id="1700000000000-0")
    assert (await recv(socket))["type"] == "resync"  # the history is gone (or never was)
    top = await publish("hal")
    future = f"{int(top.split('-')[0]) + 60_000}-0"
    socket = await ws(gateways[0], token("hal"), last_event_id=future)
    assert await recv(socket) == {"type": "resync", "id": top, "data": {}}
