"""The worker in-process against real Redis, PostgreSQL and bubblewrap: verdicts reach the
row and the user's feed, problems stop at the first failing test, nothing is judged twice."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from kubejudge_worker import record
from kubejudge_worker.judge import Verdict
from kubejudge_worker.sandbox import Sandbox, SandboxConfig
from kubejudge_worker.settings import WorkerSettings
from kubejudge_worker.worker import Worker
from prometheus_client import REGISTRY
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from worker_rows import (
    POOL,
    add_problem,
    claim_one,
    events_for,
    finish_one,
    load,
    submit,
    wait_final,
)

from kubejudge import poolview, protocol, queue
from kubejudge.settings import Settings
from kubejudge.statuses import Status

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)

DOUBLE = "print(2 * int(input()))\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="kubejudge-worker-tests-"))
    box = Sandbox(SandboxConfig(root=root))
    yield box
    box.close()
    shutil.rmtree(root, ignore_errors=True)


@asynccontextmanager
async def running_worker(
    settings: Settings,
    redis: Redis,
    engine: AsyncEngine,
    sandbox: Sandbox,
    worker_id: str,
    concurrency: int = 2,
) -> AsyncIterator[Worker]:
    config = WorkerSettings(
        redis_url=settings.redis_url, database_url=settings.database_url,
        jwt_secret=settings.jwt_secret, pool=POOL, concurrency=concurrency, metrics_port=0,
        heartbeat_ttl_s=1, reclaim_interval_s=0.3,
    )  # fmt: skip
    pg = await record.connect(config, concurrency=concurrency)
    running = Worker(settings=config, sandbox=sandbox, redis=redis, pg=pg, worker_id=worker_id)
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, timeout=30)
        await pg.close()


@pytest.fixture
async def worker(
    settings: Settings, redis: Redis, engine: AsyncEngine, sandbox: Sandbox
) -> AsyncIterator[Worker]:
    async with running_worker(settings, redis, engine, sandbox, "w-test") as running:
        yield running


async def test_a_verdict_reaches_the_row_then_the_feed_then_the_queue_is_acked(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    observed_before = _submit_to_verdict_count()
    token = await submit(engine, redis, source=DOUBLE, stdin=b"21\n", expected_output=b"42")
    row = await wait_final(engine, token)
    assert (row.status_id, row.stdout, row.attempt) == (Status.ACCEPTED, b"42\n", 1)
    assert row.time is not None and row.memory is not None and row.finished_at is not None
    events = await events_for(redis, "alice", token)
    assert [event.type for event in events] == ["status", "verdict"]
    assert events[0].data.model_dump()["status"] == Status.PROCESSING.public()
    verdict = events[1].data.model_dump()
    assert verdict["status"] == Status.ACCEPTED.public()
    assert verdict["time"] == str(row.time) and verdict["memory"] == row.memory
    assert set(verdict) == {
        "token", "status", "language_id", "problem_id", "time", "wall_time", "memory",
        "memory_limit_exceeded", "exit_code", "message", "tests", "finished_at",
    }  # fmt: skip
    await _until_acked(redis, token)  # the verdict's metrics are recorded before the ack
    assert _submit_to_verdict_count() == observed_before + 1
    beat = protocol.Heartbeat.model_validate_json(
        await redis.get(protocol.worker_heartbeat(POOL, "w-test"))
    )
    assert (beat.sandbox_mode, beat.concurrency, beat.tokens) == ("bwrap", 2, [])
    assert await redis.zscore(protocol.worker_index(POOL), "w-test") is not None


async def test_a_problem_stops_at_the_first_failing_test(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    cases = [(f"{n}\n".encode(), f"{2 * n}\n".encode(), n % 2 == 0) for n in range(1, 11)]
    cases[6] = (b"7\n", b"15\n", True)  # test 7 expects the wrong answer
    problem_id = await add_problem(engine, cases)
    token = await submit(engine, redis, source=DOUBLE, problem_id=problem_id)
    row = await wait_final(engine, token)
    assert row.status_id == Status.WRONG_ANSWER
    assert row.test_results is not None
    assert [r["status"]["id"] for r in row.test_results] == [3, 3, 3, 3, 3, 3, 4]
    assert [r["test"] for r in row.test_results] == list(range(1, 8))
    for result in row.test_results:  # outcomes only: no test's input or output
        assert set(result) == {
            "test", "hidden", "status", "time", "memory", "memory_limit_exceeded",
        }  # fmt: skip
    assert row.stdout is None  # the deciding test is hidden
    events = await events_for(redis, "alice", token)
    assert events[-1].data.model_dump()["tests"] == row.test_results


STANDALONE_83 = re.compile(r"(?<![\w.])83(?!\w|\.\d)")


def leaves(value: object) -> list[object]:
    """Every scalar inside nested dicts and lists: a test looks for a value, not a substring."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


async def test_a_hidden_test_returns_its_verdict_and_nothing_the_program_chose(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    # Exits with the first byte of its input: 0 on the visible test, 83 ("S") on the hidden one.
    leak = "import sys\nsys.exit(ord(sys.stdin.read(1)))\n"
    problem_id = await add_problem(engine, [(b"\x00", b"", False), (b"Secret", b"", True)])
    token = await submit(engine, redis, source=leak, problem_id=problem_id)
    row = await wait_final(engine, token)
    assert row.status_id == Status.RUNTIME_ERROR_NZEC
    assert (row.exit_code, row.exit_signal, row.message) == (None, None, None)
    assert (row.stdout, row.stderr) == (None, None)
    visible, hidden = row.test_results or []
    assert (visible["hidden"], hidden["hidden"]) == (False, True)
    assert (hidden["time"], hidden["memory"]) == (None, None)
    assert hidden["status"] == Status.RUNTIME_ERROR_NZEC.public()
    # The submission's figures are its visible tests' alone.
    assert str(row.time) == visible["time"] and row.memory == visible["memory"]
    [verdict] = [
        e.data.model_dump() for e in await events_for(redis, "alice", token) if e.type == "verdict"
    ]
    assert (verdict["exit_code"], verdict["message"]) == (None, None)
    # The exit code the program chose on the hidden test appears nowhere in what is published,
    # neither as a number nor as a word in a message (timestamps and times may hold the digits).
    published = leaves(verdict)
    assert 83 not in published
    assert not [leaf for leaf in published if isinstance(leaf, str) and STANDALONE_83.search(leaf)]
    assert verdict["tests"] == row.test_results


async def test_a_problem_passing_every_test_is_accepted(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    cases = [(f"{n}\n".encode(), f"{2 * n}\n".encode(), True) for n in range(1, 11)]
    problem_id = await add_problem(engine, cases)
    token = await submit(engine, redis, source=DOUBLE, problem_id=problem_id)
    row = await wait_final(engine, token)
    assert row.status_id == Status.ACCEPTED
    assert [r["status"]["id"] for r in row.test_results or []] == [3] * 10


async def test_a_duplicate_delivery_of_a_final_submission_is_acked_not_rejudged(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    token = await submit(engine, redis, source=DOUBLE, stdin=b"1\n", expected_output=b"2")
    first = await wait_final(engine, token)
    await _until_acked(redis, token)
    assert await queue.enqueue(redis, pool=POOL, token=token) is not None
    await _until_acked(redis, token)
    again = await load(engine, token)
    assert (again.attempt, again.finished_at) == (first.attempt, first.finished_at)
    assert [event.type for event in await events_for(redis, "alice", token)] == [
        "status",
        "verdict",
    ]


async def test_a_stale_attempt_cannot_overwrite_a_newer_one(
    worker: Worker, engine: AsyncEngine, redis: Redis
) -> None:
    worker.stop()  # judge nothing here: we drive the claims ourselves
    token = await submit(engine, redis, source=DOUBLE)
    old = await claim_one(engine, token)
    new = await claim_one(engine, token)
    assert old is not None and new is not None
    assert (old.submission.attempt, new.submission.attempt) == (1, 2)
    stale = Verdict(status=Status.WRONG_ANSWER)
    assert await finish_one(engine, token=token, attempt=1, verdict=stale) is None
    fresh = Verdict(status=Status.ACCEPTED)
    assert await finish_one(engine, token=token, attempt=2, verdict=fresh) is not None
    assert await finish_one(engine, token=token, attempt=2, verdict=stale) is None
    assert (await load(engine, token)).status_id == Status.ACCEPTED
    assert await claim_one(engine, token) is None  # final: no further attempt


async def test_a_worker_judging_back_to_back_reads_busy_all_along(
    settings: Settings, engine: AsyncEngine, redis: Redis, sandbox: Sandbox
) -> None:
    """The load test's busy line and the page's: between any two submissions a worker's
    heartbeat lists none for a moment, so instant readings of a worker busy all along said 0 or
    1 at random; the busy time it reports says it was busy throughout."""
    tokens = [await submit(engine, redis, source="print(1)\n") for _ in range(150)]
    watcher = poolview.PoolWatcher([POOL])
    busy: list[float] = []
    async with running_worker(settings, redis, engine, sandbox, "w-steady", concurrency=1):
        # The first reading of a worker has nothing to compare with: take it once the worker's
        # heartbeat is there (a reading before it would make the next one that first one).
        for _ in range(200):
            if (await watcher.read(redis))[0].live:
                break
            await asyncio.sleep(0.05)
        while (await queue.backlog(redis, POOL)).waiting > 0:
            await asyncio.sleep(0.3)
            state = (await watcher.read(redis))[0]
            if (await queue.backlog(redis, POOL)).waiting > 0:
                busy.append(state.busy)
        for token in tokens:
            await wait_final(engine, token)
    assert len(busy) >= 5, f"the burst ended too soon to sample: {busy}"
    assert min(busy) >= 0.7, f"a worker busy all along read {busy}"


async def _pending_under(redis: Redis, consumer: str) -> str:
    """Deliver the next entry to `consumer` behind the worker's back, as if a live worker had
    read it and then lost track of it (its ack lost with Redis, or given up after errors)."""
    reply = await redis.xreadgroup(
        protocol.QUEUE_GROUP, consumer, {protocol.queue_stream(POOL): ">"}, count=1
    )
    return reply[0][1][0][0].decode()


async def test_an_entry_a_live_worker_lost_track_of_is_judged_by_it(
    settings: Settings, redis: Redis, engine: AsyncEngine, sandbox: Sandbox
) -> None:
    token = await submit(engine, redis, source=DOUBLE, stdin=b"4\n", expected_output=b"8")
    await _pending_under(redis, "w-forgetful")
    async with running_worker(settings, redis, engine, sandbox, "w-forgetful"):
        # Its heartbeat is live, so no other worker may reclaim the entry: only it can.
        row = await wait_final(engine, token, timeout_s=20)
        await _until_acked(redis, token)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 1)


async def test_an_entry_whose_ack_was_lost_is_acked_not_rejudged(
    settings: Settings, redis: Redis, engine: AsyncEngine, sandbox: Sandbox
) -> None:
    token = await submit(engine, redis, source=DOUBLE, stdin=b"4\n", expected_output=b"8")
    await _pending_under(redis, "w-forgetful")
    claim = await claim_one(engine, token)  # judged and recorded; then the ack was lost
    assert claim is not None
    done = await finish_one(engine, token=token, attempt=1, verdict=Verdict(status=Status.ACCEPTED))
    assert done is not None
    async with running_worker(settings, redis, engine, sandbox, "w-forgetful"):
        await _until_acked(redis, token)
    row = await load(engine, token)
    assert (row.attempt, row.finished_at) == (1, done.finished_at)


async def _until_acked(redis: Redis, token: str) -> None:
    async def acked() -> bool:
        backlog = await queue.backlog(redis, POOL)
        return backlog.total == 0 and not await redis.exists(protocol.enqueued_marker(token))

    await _eventually(acked)


async def _eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


def _submit_to_verdict_count() -> float:
    """Verdicts observed so far for Python (71), from the worker's own metrics registry."""
    count = REGISTRY.get_sample_value(
        "kubejudge_worker_submit_to_verdict_seconds_count", {"language": "71"}
    )
    return count or 0.0
