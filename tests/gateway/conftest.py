"""Fixtures for the gateway tier: real `kubejudge gateway` processes against the test Redis.

- ``gateways`` (function): two running gateway processes, restarted if a test killed one.
- ``extra_gateway(**env)``: a further gateway with its own settings, for one test.
- ``token(user_id)``: a valid JWT for a user; ``ws(gateway, token, ...)`` opens a socket.
- ``publish(user_id, ...)``: an event through `kubejudge.events.publish`, as a worker does.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubejudge_dev import localservices
from redis.asyncio import Redis
from support.events import submission_state
from websockets.asyncio.client import ClientConnection, connect

from kubejudge import auth, events, protocol
from kubejudge.settings import Settings

# Small so the slow-consumer test fills it quickly; short pings so dead sockets go fast.
GATEWAY_ENV = {
    "KUBEJUDGE_GATEWAY_SEND_BUFFER_BYTES": "65536",
    "KUBEJUDGE_GATEWAY_PING_INTERVAL_S": "5",
    "KUBEJUDGE_GATEWAY_PING_TIMEOUT_S": "5",
    "KUBEJUDGE_GATEWAY_MAX_MESSAGE_BYTES": "1024",
    "KUBEJUDGE_GATEWAY_MAX_SOCKETS_PER_USER": "40",
    "KUBEJUDGE_LOG_LEVEL": "INFO",
}


@dataclass
class GatewayProcess:
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str] = field(repr=False)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, token: str, last_event_id: str | None = None) -> str:
        query = f"token={token}"
        if last_event_id is not None:
            query += f"&last_event_id={last_event_id}"
        return f"ws://127.0.0.1:{self.port}/ws?{query}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)

    def rss_bytes(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(line.split()[1]) * 1024


def start_gateway(settings: Settings, log: Path, **extra_env: str) -> GatewayProcess:
    port = localservices.free_port()
    env = {
        **os.environ,
        **GATEWAY_ENV,
        "KUBEJUDGE_REDIS_URL": settings.redis_url,
        "KUBEJUDGE_JWT_SECRET": settings.jwt_secret,
        **extra_env,
    }
    argv = [sys.executable, "-m", "kubejudge.cli", "gateway", "--host", "127.0.0.1"]
    with log.open("ab") as log_file:
        process = subprocess.Popen(
            [*argv, "--port", str(port)], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    gateway = GatewayProcess(port=port, process=process, log=log, env=env)
    wait_ready(gateway)
    return gateway


def wait_ready(gateway: GatewayProcess, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not gateway.alive:
            raise RuntimeError(f"gateway exited: {gateway.log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{gateway.http}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"gateway not ready in {timeout_s} s: {gateway.log.read_text()[-3000:]}")


# Module-scoped, so no gateway outlives this tier into the next one's Redis.
@pytest.fixture(scope="module")
def gateway_pool(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list]:
    logs = tmp_path_factory.mktemp("gateways")
    pool = [start_gateway(settings, logs / f"gateway-{i}.log") for i in range(2)]
    yield pool
    for gateway in pool:
        if gateway.alive:
            gateway.terminate()


@pytest.fixture
def gateways(
    gateway_pool: list[GatewayProcess], settings: Settings, redis: Redis
) -> list[GatewayProcess]:
    """Two running gateways (Redis is flushed first by the `redis` fixture)."""
    for index, gateway in enumerate(gateway_pool):
        if not gateway.alive:
            gateway_pool[index] = start_gateway(settings, gateway.log)
    return gateway_pool


@pytest.fixture
def extra_gateway(
    settings: Settings, tmp_path: Path, redis: Redis
) -> Iterator[Callable[..., GatewayProcess]]:
    """extra_gateway(**env): one more gateway with its own settings, killed after the test."""
    started: list[GatewayProcess] = []

    def start(**env: str) -> GatewayProcess:
        started.append(start_gateway(settings, tmp_path / f"extra-{len(started)}.log", **env))
        return started[-1]

    yield start
    for gateway in started:
        if gateway.alive:
            gateway.kill()


@pytest.fixture
def token(settings: Settings) -> Callable[[str], str]:
    return lambda user_id: auth.issue(secret=settings.jwt_secret, user_id=user_id)


WsFactory = Callable[..., Awaitable[ClientConnection]]


@pytest.fixture
async def ws() -> AsyncIterator[WsFactory]:
    """Open client sockets (closed after the test): ws(gateway, token, last_event_id=None)."""
    opened: list[ClientConnection] = []

    async def open_socket(
        gateway: GatewayProcess, token: str, last_event_id: str | None = None, **options: Any
    ) -> ClientConnection:
        socket = await connect(gateway.url(token, last_event_id), **options)
        opened.append(socket)
        return socket

    yield open_socket
    await asyncio.gather(*(socket.close() for socket in opened), return_exceptions=True)


@pytest.fixture
def publish(redis: Redis, settings: Settings) -> Callable[..., Awaitable[str]]:
    async def publish_event(
        user_id: str,
        token: str = "tok",  # noqa: S107 - a submission token, not a secret
        kind: str = "verdict",
        **fields: Any,
    ) -> str:
        data = submission_state(token, **fields)
        event = protocol.Event(type=kind, token=token, data=data)  # type: ignore[arg-type]
        event_id = await events.publish(
            redis, user_id=user_id, event=event, history_length=settings.history_length
        )
        assert event_id is not None
        return event_id

    return publish_event


async def receive(socket: ClientConnection, timeout_s: float = 5) -> dict[str, Any]:
    message = await asyncio.wait_for(socket.recv(), timeout_s)
    return json.loads(message)


@pytest.fixture
def recv() -> Callable[..., Awaitable[dict[str, Any]]]:
    """recv(socket, timeout_s=5): the next server message, parsed."""
    return receive
