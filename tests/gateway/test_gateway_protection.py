"""Bad input gets a clear answer and changes nothing; no client can make the gateway grow or
stall: bad tokens, foreign origins, oversized, malformed and binary messages, slow readers."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from kubejudge import auth


@pytest.mark.parametrize(
    "bad_token",
    [
        "",
        "not-a-jwt",
        auth.issue(secret="some-other-secret-0123456789abcdef", user_id="alice"),
        "expired",
    ],
    ids=["missing", "garbage", "wrong-key", "expired"],
)
async def test_bad_tokens_are_closed_with_4401(gateways, settings, bad_token: str) -> None:
    if bad_token == "expired":
        bad_token = auth.issue(secret=settings.jwt_secret, user_id="alice", ttl_s=-1)
    async with connect(gateways[0].url(bad_token)) as client:
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "bad or expired token")


async def test_a_socket_is_closed_with_4401_when_its_token_expires(
    gateways, settings, ws, publish, recv
) -> None:
    short = auth.issue(secret=settings.jwt_secret, user_id="alice", ttl_s=3)
    client = await ws(gateways[0], short)
    assert (await recv(client))["type"] == "welcome"
    event_id = await publish("alice")
    assert (await recv(client))["id"] == event_id
    with pytest.raises(ConnectionClosed) as closed:
        await recv(client, timeout_s=6)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4401, "token expired")


async def test_foreign_origins_are_refused_and_same_host_pages_admitted(gateways, token) -> None:
    url = gateways[0].url(token("alice"))
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, origin="http://evil.example:2358")
    assert refused.value.response.status_code == 403
    async with connect(url, origin="http://127.0.0.1:2358") as client:
        assert json.loads(await client.recv())["type"] == "welcome"


async def test_malformed_and_binary_messages_get_an_error_and_change_nothing(
    gateways, token, ws, publish, recv
) -> None:
    client = await ws(gateways[0], token("alice"))
    await recv(client)
    for bad in ["not json", '{"type":"subscribe","user":"bob"}', '{"type":"ping","x":1}', b"\x00"]:
        await client.send(bad)
        reply = await recv(client)
        assert reply["type"] == "error" and reply["data"]["message"]
    await client.send('{"type":"ping"}')
    assert (await recv(client))["type"] == "pong"
    event_id = await publish("alice")
    assert (await recv(client))["id"] == event_id


async def test_an_oversized_message_closes_with_1009(gateways, token, ws) -> None:
    client = await ws(gateways[0], token("alice"))
    await client.recv()
    await client.send('{"type":"ping","pad":"' + "x" * 2000 + '"}')
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_malformed_last_event_id_gets_an_error_and_1008(gateways, token, ws, recv) -> None:
    client = await ws(gateways[0], token("alice"), last_event_id="yesterday")
    reply = await recv(client)
    assert reply["type"] == "error" and "expected an event id" in reply["data"]["message"]
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_client_that_reads_nothing_is_cut_off_and_memory_stays_bounded(
    gateways, token, ws, publish, recv
) -> None:
    gateway = gateways[0]
    # max_queue=1: the client library stops reading the socket after one unread message, so
    # the kernel buffers (a few MiB on loopback) fill, and then the gateway's own buffer.
    stalled = await connect(gateway.url(token("slow")), max_queue=1)
    try:
        await _flood_a_stalled_socket(gateway, stalled, token, ws, publish, recv)
    finally:
        await stalled.close()


async def _flood_a_stalled_socket(gateway, stalled, token, ws, publish, recv) -> None:
    healthy = await ws(gateway, token("slow"))
    await recv(healthy)
    baseline = gateway.rss_bytes()

    async def read_all(count: int) -> list[str]:
        return [(await recv(healthy))["id"] for _ in range(count)]

    reader = asyncio.create_task(read_all(300))
    blob = "x" * 64 * 1024
    ids = [await publish("slow", token=f"t{n}", message=blob) for n in range(300)]  # ~19 MiB
    assert await reader == ids  # the same user's reading socket is not held back
    growth = gateway.rss_bytes() - baseline
    assert growth < 12 * 1024 * 1024, f"gateway grew by {growth / 2**20:.1f} MiB"

    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(15):
            while True:
                await stalled.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013


async def test_probes_and_metrics_share_the_websocket_port(gateways, token, ws, recv) -> None:
    gateway = gateways[0]
    client = await ws(gateway, token("mia"))
    await recv(client)
    async with httpx.AsyncClient(base_url=gateway.http) as http:
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/readyz")).status_code == 200
        assert (await http.get("/nope")).status_code == 404
        metrics = (await http.get("/metrics")).text
    for name in [
        "kubejudge_gateway_connections",
        "kubejudge_gateway_subscribed_users",
        "kubejudge_gateway_events_delivered_total",
        "kubejudge_gateway_delivery_latency_seconds_bucket",
        "kubejudge_gateway_auth_failures_total",
        "kubejudge_gateway_slow_consumer_closes_total",
        "kubejudge_gateway_resumes_total",
        "kubejudge_gateway_resyncs_total",
    ]:
        assert name in metrics
    connections = next(
        line for line in metrics.splitlines() if line.startswith("kubejudge_gateway_connections ")
    )
    assert float(connections.split()[1]) >= 1


async def test_one_user_cannot_open_unbounded_sockets_on_a_gateway(
    gateways, token, ws, recv
) -> None:
    sockets = [await ws(gateways[0], token("greedy")) for _ in range(40)]
    await asyncio.gather(*(recv(socket) for socket in sockets))
    extra = await ws(gateways[0], token("greedy"))
    with pytest.raises(ConnectionClosed) as closed:
        await recv(extra)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert (await recv(await ws(gateways[1], token("greedy"))))["type"] == "welcome"
    await sockets[0].close()
    await asyncio.sleep(0.2)
    assert (await recv(await ws(gateways[0], token("greedy"))))["type"] == "welcome"


async def test_a_client_that_stops_answering_pings_is_dropped(extra_gateway, token) -> None:
    gateway = extra_gateway(
        KUBEJUDGE_GATEWAY_PING_INTERVAL_S="0.5", KUBEJUDGE_GATEWAY_PING_TIMEOUT_S="0.5"
    )
    # A bare TCP client: it completes the handshake and then never answers anything.
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.port)
    writer.write(
        (
            f"GET /ws?token={token('zed')} HTTP/1.1\r\nHost: 127.0.0.1:{gateway.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(10):
        received = await reader.read()  # until the gateway hangs up
    assert received.startswith(b"HTTP/1.1 101")
    assert asyncio.get_running_loop().time() - started < 5
    writer.close()
    async with httpx.AsyncClient(base_url=gateway.http) as http:
        metrics = (await http.get("/metrics")).text
    assert "kubejudge_gateway_connections 0.0" in metrics


async def test_a_stalled_client_in_the_middle_of_a_replay_is_cut_off_too(
    extra_gateway, token, publish
) -> None:
    gateway = extra_gateway(KUBEJUDGE_GATEWAY_REPLAY_HOLD_EVENTS="10")
    base = await publish("stuck", token="base")
    blob = "x" * 64 * 1024
    for n in range(300):  # ~19 MiB of history: more than the kernel buffers take
        await publish("stuck", token=f"old{n}", message=blob)
    stalled = await connect(gateway.url(token("stuck"), last_event_id=base), max_queue=1)
    try:
        await asyncio.sleep(0.5)  # the replay is now blocked on the unread socket
        for n in range(11):  # live events are held meanwhile, up to the hold limit
            await publish("stuck", token=f"live{n}")
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await stalled.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
    finally:
        await stalled.close()
