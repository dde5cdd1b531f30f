"""Shutdown and Redis trouble: sockets are closed with 1001, so clients resume elsewhere."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
from redis.asyncio import Redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def test_sigterm_closes_every_socket_with_1001_and_exits(gateways, token, ws, recv) -> None:
    gateway = gateways[1]
    sockets = [await ws(gateway, token(f"user{n}")) for n in range(5)]
    for socket in sockets:
        await recv(socket)
    assert await asyncio.to_thread(gateway.terminate) == 0
    for socket in sockets:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(socket)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_a_draining_gateway_is_unready_while_it_still_serves(
    extra_gateway, token, recv
) -> None:
    gateway = extra_gateway(KUBEJUDGE_GATEWAY_SHUTDOWN_DELAY_S="3")
    async with connect(gateway.url(token("kim"))) as client:
        await recv(client)
        gateway.process.send_signal(signal.SIGTERM)
        async with httpx.AsyncClient(base_url=gateway.http) as http:
            for _ in range(100):
                if (await http.get("/readyz")).status_code == 503:
                    break
                await asyncio.sleep(0.02)
            else:
                pytest.fail("/readyz never turned 503 while draining")
        await client.send('{"type":"ping"}')
        assert (await recv(client))["type"] == "pong"  # still served meanwhile
        with pytest.raises(ConnectionClosed) as closed:
            await recv(client, timeout_s=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert await asyncio.to_thread(gateway.process.wait, 20) == 0


async def test_a_lost_pubsub_connection_closes_sockets_1001_and_they_resume(
    gateways, token, ws, publish, recv, redis: Redis
) -> None:
    gateway = gateways[0]
    socket = await ws(gateway, token("ivy"))
    await recv(socket)
    seen = await publish("ivy", token="seen")
    assert (await recv(socket))["id"] == seen

    await redis.client_kill_filter(_type="pubsub")  # what Redis does to a too-slow subscriber
    with pytest.raises(ConnectionClosed) as closed:
        await recv(socket)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    missed = await publish("ivy", token="missed")

    async with httpx.AsyncClient(base_url=gateway.http) as http:
        for _ in range(200):  # the gateway reconnects to Redis within its backoff
            if (await http.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the gateway did not get its event feed back within 10 s")
        metrics = (await http.get("/metrics")).text
    assert "kubejudge_gateway_feed_losses_total 1.0" in metrics
    socket = await ws(gateway, token("ivy"), last_event_id=seen)
    assert (await recv(socket))["id"] == missed
