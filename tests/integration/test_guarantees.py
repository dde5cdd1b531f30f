"""DESIGN.md guarantee 1 under a Redis crash, a duplicate delivery and a late older attempt:
an accepted submission reaches exactly one final verdict, and an older attempt never
overwrites a newer one.

The Redis tests run their own redis-server (AOF on, appendfsync everysec, as in the chart) so
they can SIGKILL it and start it again on the same port and data dir, with a real api and real
workers (subprocesses) over it and the session PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from kubejudge_dev import localservices
from kubejudge_worker import record
from kubejudge_worker.judge import Verdict
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from support.processes import spawn_role, stop, wait_ready
from worker_rows import (
    COMPILE_LIMITS,
    POOL,
    claim_one,
    events_for,
    finish_one,
    load,
    submit,
    wait_final,
    worker_connections,
)

from kubejudge import auth, protocol, queue
from kubejudge.db.engine import sessionmaker
from kubejudge.db.models import Submission
from kubejudge.settings import Settings
from kubejudge.statuses import Status

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)

USER = "alice"
ACCEPTED_42 = Verdict(status=Status.ACCEPTED, stdout=b"42\n")
# Short, so a submission lost with Redis is put back within seconds of the restart.
RECONCILE_ENV = {"KUBEJUDGE_RECONCILE_AFTER_S": "2", "KUBEJUDGE_RECONCILE_INTERVAL_S": "0.5"}
# A short drain too, so stopping the stack after a test never waits out the 25 s default.
WORKER_ENV = {
    "KUBEJUDGE_HEARTBEAT_TTL_S": "1",
    "KUBEJUDGE_RECLAIM_INTERVAL_S": "0.3",
    "KUBEJUDGE_DRAIN_TIMEOUT_S": "2",
}


def _program(index: int) -> str:
    """Every third one sleeps, so some are mid-run when Redis goes away."""
    pause = "import time\ntime.sleep(0.5)\n" if index % 3 == 0 else ""
    return f"{pause}print({index})\n"


@dataclass
class OwnRedis:
    """A redis-server of this test's own, which the test may crash and start again."""

    data_dir: Path
    server: localservices.LocalServer

    @property
    def url(self) -> str:
        return self.server.url

    def crash(self) -> None:
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait()

    def start_again(self, *, lose_data: bool) -> None:
        """Same port and data dir; `lose_data` first deletes the AOF (a Redis without a
        persistent volume comes back empty)."""
        if lose_data:
            shutil.rmtree(self.data_dir / "appendonlydir")
        port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        self.server = localservices.start_redis(self.data_dir, port=port)


@dataclass
class Stack:
    """Real api and worker processes over `OwnRedis` and the session PostgreSQL."""

    settings: Settings
    logs: Path
    sandbox_root: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    api: str = ""

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "KUBEJUDGE_REDIS_URL": self.settings.redis_url,
            "KUBEJUDGE_DATABASE_URL": self.settings.database_url,
            "KUBEJUDGE_JWT_SECRET": self.settings.jwt_secret,
            "KUBEJUDGE_MIGRATE_ON_START": "false",  # the `settings` fixture migrated
            "KUBEJUDGE_SANDBOX_ROOT": str(self.sandbox_root),
            "KUBEJUDGE_LOG_LEVEL": "INFO",
            **extra,
        }

    def start_api(self) -> None:
        port = localservices.free_port()
        self.processes["api"] = spawn_role(
            "api", "--host", "127.0.0.1", "--port", str(port),
            env=self.env(**RECONCILE_ENV), log=self.logs / "api.log",
        )  # fmt: skip
        self.api = f"http://127.0.0.1:{port}"
        wait_ready(f"{self.api}/readyz", list(self.processes.values()), self.logs)

    def start_worker(self, name: str, *, concurrency: int) -> None:
        port = localservices.free_port()
        self.processes[name] = spawn_role(
            "worker", "--pool", POOL, "--concurrency", str(concurrency),
            "--metrics-port", str(port), env=self.env(**WORKER_ENV), log=self.logs / f"{name}.log",
        )  # fmt: skip
        wait_ready(f"http://127.0.0.1:{port}/readyz", list(self.processes.values()), self.logs)

    def dead(self) -> dict[str, int | None]:
        return {name: p.returncode for name, p in self.processes.items() if p.poll() is not None}

    def log_tails(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text()[-3000:]}" for log in self.logs.glob("*.log")
        )


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    data_dir = tmp_path / "redis"
    handle = OwnRedis(data_dir=data_dir, server=localservices.start_redis(data_dir))
    yield handle
    handle.server.stop()


@pytest.fixture
async def own_client(own_redis: OwnRedis) -> AsyncIterator[Redis]:
    client = Redis.from_url(own_redis.url, socket_connect_timeout=1)
    yield client
    await client.aclose()


@pytest.fixture
def stack(
    settings: Settings, own_redis: OwnRedis, engine: AsyncEngine, tmp_path: Path
) -> Iterator[Stack]:
    """Depends on `engine` so the api's reconciler starts over an empty submissions table."""
    logs = tmp_path / "logs"
    logs.mkdir()
    # Not under pytest's 0700 tmp dir, which the sandboxed user cannot reach.
    sandbox_root = Path(tempfile.mkdtemp(prefix="kubejudge-guarantees-"))
    ours = settings.model_copy(update={"redis_url": own_redis.url})
    built = Stack(settings=ours, logs=logs, sandbox_root=sandbox_root)
    try:
        yield built
    finally:
        stop(built.processes.values())
        shutil.rmtree(sandbox_root, ignore_errors=True)


@pytest.fixture
def headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {auth.issue(secret=settings.jwt_secret, user_id=USER)}"}


async def _post(client: httpx.AsyncClient, index: int, headers: dict[str, str]) -> str | None:
    """The token if the api answered 201 (an accepted submission), else None."""
    body = {"source_code": _program(index), "language_id": 71, "expected_output": f"{index}\n"}
    response = await client.post("/submissions", json=body, headers=headers)
    return response.json()["token"] if response.status_code == 201 else None


async def _count_processing(engine: AsyncEngine) -> int:
    async with sessionmaker(engine)() as session:
        rows = await session.execute(
            select(Submission.token).where(Submission.status_id == int(Status.PROCESSING))
        )
        return len(rows.all())


Snapshot = tuple[int, int, bytes | None, str | None, object]


async def _finals(engine: AsyncEngine, tokens: list[str]) -> dict[str, Snapshot]:
    """(status, attempt, stdout, message, finished_at) of each token with a final status."""
    async with sessionmaker(engine)() as session:
        rows = (
            await session.execute(select(Submission).where(Submission.token.in_(tokens)))
        ).scalars()
        return {
            row.token: (row.status_id, row.attempt, row.stdout, row.message, row.finished_at)
            for row in rows
            if row.status_id > int(Status.PROCESSING)
        }


async def _watch_until_final(
    engine: AsyncEngine, tokens: list[str], *, timeout_s: float, settle_s: float
) -> dict[str, Snapshot]:
    """Poll until every token is final, then `settle_s` more; fail if a final row changes."""
    first_seen: dict[str, Snapshot] = {}
    settle_until: float | None = None
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout_s):
        while settle_until is None or loop.time() < settle_until:
            for token, snapshot in (await _finals(engine, tokens)).items():
                seen = first_seen.setdefault(token, snapshot)
                assert seen == snapshot, f"the verdict of {token} changed after it was final"
            if settle_until is None and len(first_seen) == len(tokens):
                settle_until = loop.time() + settle_s
            await asyncio.sleep(0.1)
    return first_seen


async def _until(check: Callable[[], Awaitable[object]], *, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("lose_data", [False, True], ids=["aof-kept", "aof-lost"])
async def test_a_redis_crash_mid_run_loses_no_accepted_submission(
    lose_data: bool,
    stack: Stack,
    own_redis: OwnRedis,
    own_client: Redis,
    engine: AsyncEngine,
    headers: dict[str, str],
) -> None:
    stack.start_api()
    stack.start_worker("worker-1", concurrency=2)
    stack.start_worker("worker-2", concurrency=2)
    accepted: list[str | None] = []
    async with httpx.AsyncClient(base_url=stack.api, timeout=10) as client:
        accepted += await asyncio.gather(*(_post(client, i, headers) for i in range(12)))
        assert all(accepted), "every submission is accepted while Redis is up"
        await _until(lambda: _count_processing(engine), timeout_s=20)
        own_redis.crash()  # SIGKILL: AOF everysec may lose what the last second wrote
        # Verdicts published before the crash are among these; with the AOF lost, so are
        # their events. Every other verdict is published after the restart.
        final_at_crash = set(await _finals(engine, [t for t in accepted if t is not None]))
        # Accepted while Redis is down: committed, enqueued later by the reconciler.
        accepted += await asyncio.gather(*(_post(client, i, headers) for i in range(12, 20)))
        await asyncio.sleep(1)
        own_redis.start_again(lose_data=lose_data)
        # The api fails open on Redis (admission checks skipped, enqueue deferred).
        assert all(accepted), "a submission was refused while Redis was down"
        tokens = [token for token in accepted if token is not None]
        try:
            finals = await _watch_until_final(engine, tokens, timeout_s=40, settle_s=2)
        except TimeoutError:
            pytest.fail(f"not every accepted submission became final:\n{stack.log_tails()}")
        wrong = {t: snapshot for t, snapshot in finals.items() if snapshot[0] != Status.ACCEPTED}
        assert wrong == {}, stack.log_tails()
        for token in tokens:
            verdicts = [e for e in await events_for(own_client, USER, token) if e.type == "verdict"]
            lost = lose_data and token in final_at_crash
            assert len(verdicts) in ((0, 1) if lost else (1,)), f"{token}: {len(verdicts)} verdicts"
        # The consumer group survived (or was recreated): new work still gets judged.
        after = await asyncio.gather(*(_post(client, i, headers) for i in range(20, 23)))
    assert all(after)
    assert protocol.QUEUE_GROUP in [
        group["name"].decode()
        for group in await own_client.xinfo_groups(protocol.queue_stream(POOL))
    ]
    for token in after:
        assert (await wait_final(engine, token, timeout_s=15)).status_id == Status.ACCEPTED
    await _until(lambda: _drained(own_client), timeout_s=10)
    assert stack.dead() == {}, stack.log_tails()


async def _drained(redis: Redis) -> bool:
    return (await queue.backlog(redis, POOL)).total == 0


# One slot: the second delivery finds the row final and is skipped. Two slots: both deliveries
# run at once; the older attempt's verdict is fenced out and its entry must still be acked.
@pytest.mark.parametrize("concurrency", [1, 2], ids=["in-turn", "at-once"])
async def test_a_duplicate_delivery_yields_one_verdict_and_is_acked(
    concurrency: int, stack: Stack, own_client: Redis, engine: AsyncEngine
) -> None:
    token = await submit(engine, own_client, source="print(42)\n", expected_output=b"42\n")
    # At-least-once: the same token a second time, past the marker that normally prevents it.
    await own_client.xadd(protocol.queue_stream(POOL), protocol.QueueEntry(token=token).fields())
    stack.start_worker("worker", concurrency=concurrency)
    row = await wait_final(engine, token, timeout_s=20)
    await _until(lambda: _drained(own_client), timeout_s=10)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, concurrency)
    assert (await load(engine, token)).finished_at == row.finished_at
    verdicts = [e for e in await events_for(own_client, USER, token) if e.type == "verdict"]
    assert len(verdicts) == 1
    assert await own_client.xlen(protocol.queue_stream(POOL)) == 0
    assert not await own_client.exists(protocol.enqueued_marker(token))
    assert stack.dead() == {}


async def test_an_older_attempts_late_verdict_never_overwrites_a_newer_one(
    engine: AsyncEngine, redis: Redis
) -> None:
    token = await submit(engine, redis, source="print(1)\n")
    first = await claim_one(engine, token)
    second = await claim_one(engine, token)  # the first worker was presumed dead
    assert first is not None and second is not None
    assert (first.submission.attempt, second.submission.attempt) == (1, 2)
    newer = Verdict(status=Status.ACCEPTED, stdout=b"newer\n")
    written = await finish_one(engine, token=token, attempt=2, verdict=newer)
    assert written is not None and (written.status_id, written.attempt) == (Status.ACCEPTED, 2)
    older = Verdict(status=Status.WRONG_ANSWER, stdout=b"older\n")
    assert await finish_one(engine, token=token, attempt=1, verdict=older) is None
    assert await finish_one(engine, token=token, attempt=2, verdict=older) is None
    assert await claim_one(engine, token) is None  # final: no third attempt starts
    row = await load(engine, token)
    assert (row.status_id, row.attempt, row.stdout) == (Status.ACCEPTED, 2, b"newer\n")


async def test_a_batched_verdict_write_is_fenced_row_by_row(
    engine: AsyncEngine, redis: Redis
) -> None:
    """One statement writes a batch of verdicts: the stale attempt's row changes nothing, the
    current one's is written, whatever their order in the batch."""
    stale_token = await submit(engine, redis, source="print(1)\n")
    fresh_token = await submit(engine, redis, source="print(1)\n")
    async with worker_connections(engine) as pg:
        claims = await record.claim(pg, [stale_token, fresh_token], compile_limits=COMPILE_LIMITS)
        assert [claim is not None and claim.submission.attempt for claim in claims] == [1, 1]
        [again] = await record.claim(pg, [stale_token], compile_limits=COMPILE_LIMITS)
        assert again is not None and again.submission.attempt == 2  # the first: presumed dead
        now = record.now()
        older = Verdict(status=Status.WRONG_ANSWER, stdout=b"older\n")
        newer = Verdict(status=Status.ACCEPTED, stdout=b"newer\n")
        written = await record.finish(
            pg,
            [
                record.Outcome(token=stale_token, attempt=1, verdict=older, finished_at=now),
                record.Outcome(token=fresh_token, attempt=1, verdict=newer, finished_at=now),
            ],
        )
    assert written[0] is None
    assert written[1] is not None and written[1].status_id == Status.ACCEPTED
    assert (await load(engine, fresh_token)).stdout == b"newer\n"
    stale = await load(engine, stale_token)
    assert (stale.status_id, stale.attempt, stale.stdout) == (Status.PROCESSING, 2, None)
    assert (await load(engine, fresh_token)).status_id == Status.ACCEPTED


async def test_a_token_twice_in_one_claim_batch_gets_two_attempts(
    engine: AsyncEngine, redis: Redis
) -> None:
    """Two entries of one token in flight together are claimed as they would be one at a time:
    the later attempt fences the earlier out; neither is taken for a final submission."""
    token = await submit(engine, redis, source="print(1)\n")
    async with worker_connections(engine) as pg:
        first, second = await record.claim(pg, [token, token], compile_limits=COMPILE_LIMITS)
    assert first is not None and second is not None
    assert (first.submission.attempt, second.submission.attempt) == (1, 2)
    assert (
        await finish_one(engine, token=token, attempt=1, verdict=Verdict(status=Status.ACCEPTED))
        is None
    )
    assert (
        await finish_one(engine, token=token, attempt=2, verdict=Verdict(status=Status.ACCEPTED))
        is not None
    )


async def test_a_claim_and_a_verdict_share_one_statement_each_fenced_as_alone(
    engine: AsyncEngine, redis: Redis
) -> None:
    """A slot's next claim goes with its last verdict: the claim starts an attempt on its
    submission (with the job to judge), the verdict is written only for its current attempt,
    and a stale verdict in the same statement changes nothing."""
    done, stale, following = [await submit(engine, redis, source="print(1)\n") for _ in "abc"]
    async with worker_connections(engine) as pg:
        await record.claim(pg, [done, stale, stale], compile_limits=COMPILE_LIMITS)
        now = record.now()
        claims, finals = await record.claim_and_finish(
            pg,
            [following],
            [
                record.Outcome(token=done, attempt=1, verdict=ACCEPTED_42, finished_at=now),
                record.Outcome(token=stale, attempt=1, verdict=ACCEPTED_42, finished_at=now),
            ],
            compile_limits=COMPILE_LIMITS,
        )
    [claim] = claims
    assert claim is not None and claim.submission.attempt == 1
    assert claim.job.source == b"print(1)\n"
    assert finals[0] is not None and finals[0].status_id == Status.ACCEPTED
    assert (await load(engine, done)).stdout == b"42\n"
    assert finals[1] is None
    assert (await load(engine, following)).status_id == Status.PROCESSING
    assert (await load(engine, done)).status_id == Status.ACCEPTED
    assert (await load(engine, stale)).status_id == Status.PROCESSING


async def test_a_claim_of_a_submission_whose_verdict_goes_with_it_finds_it_final(
    engine: AsyncEngine, redis: Redis
) -> None:
    """PostgreSQL applies one of two updates of a row in one statement: a claim of a token
    whose verdict is in the same batch (a duplicate entry) goes after it, as alone."""
    token = await submit(engine, redis, source="print(1)\n")
    async with worker_connections(engine) as pg:
        await record.claim(pg, [token], compile_limits=COMPILE_LIMITS)
        outcome = record.Outcome(
            token=token, attempt=1, verdict=ACCEPTED_42, finished_at=record.now()
        )
        claims, finals = await record.claim_and_finish(
            pg, [token], [outcome], compile_limits=COMPILE_LIMITS
        )
    assert claims == [None]
    assert finals[0] is not None and finals[0].status_id == Status.ACCEPTED
    row = await load(engine, token)
    assert (row.status_id, row.attempt) == (Status.ACCEPTED, 1)


async def test_a_fenced_out_attempt_leaves_a_reclaimed_entry_to_its_new_owner(
    redis: Redis, engine: AsyncEngine
) -> None:
    token = await submit(engine, redis, source="print(1)\n")
    [slow] = await queue.read(redis, pool=POOL, consumer="slow", count=1, block_ms=10)
    # "slow" has no heartbeat, so it looks dead: "fresh" takes the entry over.
    [taken] = await queue.reclaim(redis, pool=POOL, consumer="fresh", count=1)
    assert taken.entry_id == slow.entry_id
    assert not await queue.drop_if_held(redis, pool=POOL, delivery=slow, consumer="slow")
    pending = await redis.xpending_range(
        protocol.queue_stream(POOL), protocol.QUEUE_GROUP, min="-", max="+", count=10
    )
    assert [(p["message_id"].decode(), p["consumer"].decode()) for p in pending] == [
        (slow.entry_id, "fresh")
    ]
    assert await redis.exists(protocol.enqueued_marker(token))
    assert await queue.drop_if_held(redis, pool=POOL, delivery=taken, consumer="fresh")
    assert (await queue.backlog(redis, POOL)).total == 0
