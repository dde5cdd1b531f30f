"""Real `kubejudge worker` processes, killed and stopped under load: a submission still gets
exactly one final verdict, a submission that keeps killing its worker is dead-lettered, and
SIGTERM drains. The test itself is the crash: it SIGKILLs the worker it sees judging the
token (in the heartbeat), a hook no submission can reach."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from worker_rows import POOL, events_for, judging, load, submit, wait_final

from kubejudge import protocol, queue
from kubejudge.settings import Settings
from kubejudge.statuses import Status

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)

SLOW = "import time\ntime.sleep(1.5)\nprint(42)\n"
Spawner = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture(scope="module")
def sandbox_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="kubejudge-worker-procs-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def spawn_worker(settings: Settings, sandbox_root: Path) -> Iterator[Spawner]:
    started: list[subprocess.Popen[bytes]] = []

    def spawn(**env: str) -> subprocess.Popen[bytes]:
        variables = {
            **os.environ,
            "KUBEJUDGE_REDIS_URL": settings.redis_url,
            "KUBEJUDGE_DATABASE_URL": settings.database_url,
            "KUBEJUDGE_JWT_SECRET": settings.jwt_secret,
            "KUBEJUDGE_HEARTBEAT_TTL_S": "1",
            "KUBEJUDGE_RECLAIM_INTERVAL_S": "0.3",
            "KUBEJUDGE_METRICS_PORT": "0",
            "KUBEJUDGE_SANDBOX_ROOT": str(sandbox_root),
            **env,
        }
        command = [sys.executable, "-m", "kubejudge.cli", "worker", "--pool", POOL]
        process = subprocess.Popen(command, env=variables)
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


async def _killed_while_judging(redis: Redis, process: subprocess.Popen[bytes], token: str) -> None:
    await _judged_by(redis, token, process)
    process.send_signal(signal.SIGKILL)
    process.wait()


async def test_a_worker_killed_mid_run_still_yields_exactly_one_verdict(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    token = await submit(engine, redis, source=SLOW, expected_output=b"42")
    await _killed_while_judging(redis, spawn_worker(), token)
    spawn_worker()  # reclaims once the dead worker's heartbeat expires
    row = await wait_final(engine, token)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 2)
    verdicts = [
        event for event in await events_for(redis, "alice", token) if event.type == "verdict"
    ]
    assert len(verdicts) == 1
    assert (await queue.backlog(redis, POOL)).total == 0


async def test_a_worker_killed_with_two_entries_read_at_once_yields_one_verdict_each(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    """Two free slots take both entries in one read and claim both in one statement; when the
    worker dies, both are reclaimed, and each is judged and published once."""
    tokens = [await submit(engine, redis, source=SLOW, expected_output=b"42") for _ in range(2)]
    process = spawn_worker(KUBEJUDGE_CONCURRENCY="2")
    for token in tokens:
        await _judged_by(redis, token, process)
    process.send_signal(signal.SIGKILL)
    process.wait()
    spawn_worker(KUBEJUDGE_CONCURRENCY="2")
    for token in tokens:
        row = await wait_final(engine, token)
        assert (row.status_id, row.attempt) == (Status.ACCEPTED, 2)
        verdicts = [e for e in await events_for(redis, "alice", token) if e.type == "verdict"]
        assert len(verdicts) == 1
    for _ in range(200):  # the acks follow the verdicts' commit
        if not (await queue.backlog(redis, POOL)).total:
            break
        await asyncio.sleep(0.05)
    assert (await queue.backlog(redis, POOL)).total == 0


async def test_a_submission_that_kills_its_worker_every_time_is_dead_lettered(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    token = await submit(engine, redis, source=SLOW, expected_output=b"42")
    for _ in range(2):
        await _killed_while_judging(redis, spawn_worker(KUBEJUDGE_MAX_ATTEMPTS="2"), token)
    spawn_worker(KUBEJUDGE_MAX_ATTEMPTS="2")
    row = await wait_final(engine, token)
    assert row.status_id == Status.INTERNAL_ERROR
    assert row.message is not None and row.message.startswith("gave up after 2 attempts")
    dead = await redis.xrange(protocol.dead_letter_stream(POOL))
    assert [fields[b"token"].decode() for _, fields in dead] == [token]
    assert (await queue.backlog(redis, POOL)).total == 0
    assert not await redis.exists(protocol.enqueued_marker(token))
    verdicts = [
        event for event in await events_for(redis, "alice", token) if event.type == "verdict"
    ]
    assert [event.data.status.id for event in verdicts] == [Status.INTERNAL_ERROR]


async def test_sigterm_finishes_running_work_takes_no_more_and_exits_zero(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    port = _free_port()
    process = spawn_worker(KUBEJUDGE_METRICS_PORT=str(port))
    token = await submit(engine, redis, source=SLOW, expected_output=b"42")
    worker_id = await _judged_by(redis, token, process)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
        metrics = (await client.get("/metrics")).text
    assert 'kubejudge_worker_sandbox_mode{memory="cgroup",mode="bwrap"} 1.0' in metrics
    assert 'kubejudge_worker_busy{pool="default"} 1.0' in metrics
    assert "kubejudge_worker_box_servers_started 1.0" in metrics
    process.send_signal(signal.SIGTERM)
    later = await submit(engine, redis, source=SLOW, expected_output=b"42")
    assert await asyncio.to_thread(process.wait, 20) == 0
    row = await wait_final(engine, token, timeout_s=1)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 1)
    assert (await load(engine, later)).status_id == Status.IN_QUEUE
    assert not await redis.exists(protocol.worker_heartbeat(POOL, worker_id))


async def _judged_by(redis: Redis, token: str, process: subprocess.Popen[bytes]) -> str:
    """The worker id of `process` once its heartbeat lists `token` (ids embed the pid; a dead
    worker's heartbeat may still list it for up to a TTL)."""
    async with asyncio.timeout(30):
        while True:
            worker_id = await judging(redis, token)
            if worker_id is not None and f"-{process.pid}-" in worker_id:
                return worker_id
            await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_sigterm_past_the_grace_period_releases_the_submission_to_another_worker(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    process = spawn_worker(KUBEJUDGE_DRAIN_TIMEOUT_S="0.2")
    token = await submit(engine, redis, source=SLOW, expected_output=b"42")
    worker_id = await _judged_by(redis, token, process)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 10) == 0
    assert (await load(engine, token)).status_id == Status.PROCESSING  # released, not finished
    assert not await redis.exists(protocol.worker_heartbeat(POOL, worker_id))
    spawn_worker()  # no heartbeat to wait out: it takes the entry over at once
    row = await wait_final(engine, token)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 2)


async def test_a_busy_worker_holds_one_entry_ahead_and_leaves_it_unclaimed_when_it_stops(
    spawn_worker: Spawner, engine: AsyncEngine, redis: Redis
) -> None:
    """While its one slot is busy, the worker holds the next entry, so the slot goes from one
    run to the next without a read; held is not claimed, so on SIGTERM it goes to another
    worker as it came, with no attempt spent."""
    first, held = [await submit(engine, redis, source=SLOW, expected_output=b"42") for _ in "ab"]
    process = spawn_worker()
    worker_id = await _judged_by(redis, first, process)
    pending = await redis.xpending_range(
        protocol.queue_stream(POOL), protocol.QUEUE_GROUP, min="-", max="+", count=10
    )
    assert [item["consumer"].decode() for item in pending] == [worker_id] * 2
    row = await load(engine, held)
    assert (row.status_id, row.attempt) == (Status.IN_QUEUE, 0)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 20) == 0
    assert (await wait_final(engine, first, timeout_s=1)).attempt == 1
    row = await load(engine, held)
    assert (row.status_id, row.attempt) == (Status.IN_QUEUE, 0)
    spawn_worker()  # our heartbeat is gone: it takes the held entry over at once
    row = await wait_final(engine, held)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 1)
