"""Helpers for the worker tests: submission rows as the api would insert them, and waits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import asyncpg
from kubejudge_worker import record
from kubejudge_worker.judge import Verdict
from kubejudge_worker.settings import WorkerSettings
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge import protocol, queue
from kubejudge.db.engine import sessionmaker
from kubejudge.db.models import Problem, Submission, TestCase
from kubejudge.settings import Settings

POOL = "default"
COMPILE_LIMITS = WorkerSettings().compile_limits


@contextlib.asynccontextmanager
async def worker_connections(engine: AsyncEngine) -> AsyncIterator[asyncpg.Pool]:
    """The connections a worker makes (`record.connect`), to the test's database."""
    url = engine.url.render_as_string(hide_password=False)
    pg = await record.connect(Settings(database_url=url), concurrency=1)
    try:
        yield pg
    finally:
        await pg.close()


async def claim_one(engine: AsyncEngine, token: str) -> record.Claim | None:
    """`record.claim` of one token, as a worker with one submission in flight makes it."""
    async with worker_connections(engine) as pg:
        [claim] = await record.claim(pg, [token], compile_limits=COMPILE_LIMITS)
    return claim


async def finish_one(
    engine: AsyncEngine, *, token: str, attempt: int, verdict: Verdict
) -> record.Stored | None:
    """`record.finish` of one attempt's verdict."""
    now = record.now()
    outcome = record.Outcome(token=token, attempt=attempt, verdict=verdict, finished_at=now)
    async with worker_connections(engine) as pg:
        [final] = await record.finish(pg, [outcome])
    return final


async def submit(
    engine: AsyncEngine,
    redis: Redis,
    *,
    source: str,
    language_id: int = 71,
    stdin: bytes = b"",
    expected_output: bytes | None = None,
    owner: str | None = "alice",
    problem_id: int | None = None,
    wall_time_limit: str = "5",
) -> str:
    """Insert a submission with Judge0's defaults (shorter time limits) and enqueue it."""
    token = str(uuid.uuid4())
    row = Submission(
        token=token, owner=owner, problem_id=problem_id, source_code=source.encode(),
        language_id=language_id, stdin=stdin, expected_output=expected_output,
        cpu_time_limit=Decimal("2"), cpu_extra_time=Decimal("0.5"),
        wall_time_limit=Decimal(wall_time_limit), memory_limit=128_000, stack_limit=64_000,
        max_processes_and_or_threads=60, enable_per_process_and_thread_time_limit=False,
        enable_per_process_and_thread_memory_limit=False, max_file_size=1024,
        redirect_stderr_to_stdout=False, enable_network=False, number_of_runs=1,
    )  # fmt: skip
    async with sessionmaker(engine)() as session, session.begin():
        session.add(row)
    await queue.ensure_group(redis, POOL)
    await queue.enqueue(redis, pool=POOL, token=token)
    return token


async def add_problem(engine: AsyncEngine, cases: list[tuple[bytes, bytes, bool]]) -> int:
    """A problem whose tests are (input, expected output, hidden), in this order."""
    async with sessionmaker(engine)() as session, session.begin():
        problem = Problem(slug=f"p-{uuid.uuid4().hex[:8]}", title="Double", statement="",
                          cpu_time_limit=Decimal("2"), memory_limit=128_000)  # fmt: skip
        session.add(problem)
        await session.flush()
        for position, (given, wanted, hidden) in enumerate(cases, start=1):
            session.add(TestCase(problem_id=problem.id, position=position, input=given,
                                 expected_output=wanted, hidden=hidden))  # fmt: skip
        return problem.id


async def load(engine: AsyncEngine, token: str) -> Submission:
    async with sessionmaker(engine)() as session:
        return (
            await session.execute(select(Submission).where(Submission.token == token))
        ).scalar_one()


async def wait_final(engine: AsyncEngine, token: str, *, timeout_s: float = 60) -> Submission:
    async with asyncio.timeout(timeout_s):
        while True:
            row = await load(engine, token)
            if row.status_id > 2:
                return row
            await asyncio.sleep(0.1)


async def events_for(redis: Redis, user: str, token: str) -> list[protocol.Event]:
    entries = await redis.xrange(protocol.user_history(user))
    found = [protocol.Event.model_validate_json(fields[b"event"]) for _, fields in entries]
    return [event for event in found if event.token == token]


async def judging(redis: Redis, token: str) -> str | None:
    """The id of the live worker whose heartbeat says it is judging `token`, if any."""
    for worker_id in await redis.zrange(protocol.worker_index(POOL), 0, -1):
        raw = await redis.get(protocol.worker_heartbeat(POOL, worker_id.decode()))
        if raw and token in json.loads(raw)["tokens"]:
            return worker_id.decode()
    return None
