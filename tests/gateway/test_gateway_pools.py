"""The worker pools' live view: any gateway serves it to every page that asks (`pools=1`),
read from Redis (queues, heartbeats, the autoscaler's last decision), pushed when it changes;
sockets that did not ask get nothing new."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from kubejudge import poolview, protocol, queue
from kubejudge.settings import DEFAULT_POOL


async def watch(gateway: Any, token: str) -> ClientConnection:
    return await connect(gateway.url(token) + "&pools=1")


async def until_pool(socket: ClientConnection, recv: Any, **wanted: Any) -> dict[str, Any]:
    """The first `pools` message whose default pool matches `wanted` (others may come first)."""
    seen = []
    for _ in range(20):
        message = await recv(socket)
        assert message["type"] == "pools", message
        (state,) = message["data"]["pools"]
        seen.append(state)
        if all(state[key] == value for key, value in wanted.items()):
            return state
    raise AssertionError(f"expected {wanted}, saw {seen}")


async def test_every_watching_page_on_any_gateway_sees_the_pool_change(
    gateways, token, ws, recv, redis: Redis
) -> None:
    first, second = gateways
    alice, bob = await watch(first, token("alice")), await watch(second, token("bob"))
    quiet = await ws(first, token("carol"))
    try:
        for socket in (alice, bob, quiet):
            assert (await recv(socket))["type"] == "welcome"
        for socket in (alice, bob):
            idle = await until_pool(socket, recv, waiting=0, live=0)
            assert idle == {
                "pool": DEFAULT_POOL, "waiting": 0, "in_flight": 0, "live": 0, "busy": 0.0,
                "wanted": None, "reason": None,
            }  # fmt: skip

        for n in range(3):
            await queue.enqueue(redis, pool=DEFAULT_POOL, token=f"t{n}")
        beat = protocol.Heartbeat(worker_id="w1", pool=DEFAULT_POOL, concurrency=1, tokens=["t"])
        await redis.set(protocol.worker_heartbeat(DEFAULT_POOL, "w1"), beat.model_dump_json())
        await redis.zadd(protocol.worker_index(DEFAULT_POOL), {"w1": protocol.now_ms() + 60_000})
        await poolview.record_decision(
            redis, pool=DEFAULT_POOL, desired=3, current=1, reason="scale up 1 -> 3"
        )

        for socket in (alice, bob):
            busy = await until_pool(socket, recv, waiting=3, live=1, wanted=3)
            assert (busy["busy"], busy["reason"]) == (1.0, "scale up 1 -> 3")
        await quiet.send('{"type":"ping"}')
        assert (await recv(quiet))["type"] == "pong"  # nothing else was queued before it
    finally:
        await alice.close()
        await bob.close()
