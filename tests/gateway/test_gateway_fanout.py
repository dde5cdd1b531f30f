"""Guarantee 3, live half: every event reaches every open socket of its user, on every
gateway, in order, and no other user's socket."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from kubejudge import protocol


async def test_every_event_reaches_all_of_a_users_sockets_and_no_one_else(
    gateways, token, ws, publish, recv
) -> None:
    first, second = gateways
    alice = [
        await ws(first, token("alice")),
        await ws(first, token("alice")),
        await ws(second, token("alice")),
    ]
    bob = await ws(second, token("bob"))
    for socket in [*alice, bob]:
        assert (await recv(socket))["type"] == "welcome"

    sent = []
    for n in range(20):
        kind = "status" if n % 2 == 0 else "verdict"
        sent.append((kind, await publish("alice", token=f"a{n}", kind=kind)))
        if n % 5 == 0:
            await publish("bob", token=f"b{n}")

    for socket in alice:
        got = [await recv(socket) for _ in sent]
        assert [(m["type"], m["id"]) for m in got] == sent
        assert [m["data"]["token"] for m in got] == [f"a{n}" for n in range(20)]
    bob_got = [await recv(bob) for _ in range(4)]
    assert [m["data"]["token"] for m in bob_got] == ["b0", "b5", "b10", "b15"]
    with pytest.raises(TimeoutError):
        await recv(bob, timeout_s=0.3)


async def test_a_user_channel_is_subscribed_once_per_gateway_while_a_socket_is_open(
    gateways, token, ws, recv, redis: Redis
) -> None:
    gateway = gateways[0]
    channel = protocol.user_channel("carol")

    async def subscribers() -> int:
        return dict(await redis.pubsub_numsub(channel))[channel.encode()]

    sockets = [await ws(gateway, token("carol")) for _ in range(3)]
    for socket in sockets:
        await recv(socket)
    assert await subscribers() == 1
    await sockets[0].close()
    await sockets[1].close()
    await asyncio.sleep(0.2)
    assert await subscribers() == 1
    await sockets[2].close()
    await _eventually(lambda: subscribers(), 0)
    assert await redis.pubsub_numpat() == 0


async def test_racing_opens_and_closes_leave_a_consistent_subscription(
    gateways, token, ws, publish, recv, redis: Redis
) -> None:
    gateway = gateways[0]
    channel = protocol.user_channel("dave")

    async def churn() -> None:
        socket = await ws(gateway, token("dave"))
        await socket.close()

    # Opens and closes interleave in every order while the SUBSCRIBEs are still in flight.
    await asyncio.gather(*(churn() for _ in range(30)))
    keeper = await ws(gateway, token("dave"))
    assert (await recv(keeper))["type"] == "welcome"
    await asyncio.gather(*(churn() for _ in range(30)))
    event_id = await publish("dave", token="d1")
    assert (await recv(keeper))["id"] == event_id
    assert dict(await redis.pubsub_numsub(channel))[channel.encode()] == 1
    await keeper.close()
    await _eventually(lambda: _numsub(redis, channel), 0)


async def test_one_pubsub_connection_per_gateway_however_many_sockets(
    gateways, token, ws, recv, redis: Redis
) -> None:
    sockets = [await ws(gateways[n % 2], token(f"user{n}")) for n in range(60)]
    await asyncio.gather(*(recv(socket) for socket in sockets))
    clients = await redis.client_list(_type="pubsub")
    assert len(clients) == 2
    assert sorted(int(c["sub"]) for c in clients) == [30, 30]


async def _numsub(redis: Redis, channel: str) -> int:
    return dict(await redis.pubsub_numsub(channel))[channel.encode()]


async def _eventually(probe, expected: int, timeout_s: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"expected {expected}, got {value}"
        await asyncio.sleep(0.05)
