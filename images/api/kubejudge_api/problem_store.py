"""Problems and their test cases: admin writes, public reads served cache-aside from Redis.

No reader sees a problem older than the last acknowledged update. The ordering:

1. The writer, in one PostgreSQL transaction (problem writes serialised by an advisory lock),
   writes the problem and bumps its `version`, computes the list's version, and then — still
   before COMMIT — raises a floor in Redis for both keys: the cache entry is replaced by a
   tombstone carrying the new version. If Redis refuses, the transaction rolls back (503) and
   nothing changed.
2. COMMIT, then answer.
3. A reader that misses reads PostgreSQL and fills the cache with a Lua script that refuses any
   value older than the entry (tombstone or value) already there.

A fill of the old version can only come from a read made before the COMMIT; if it lands after
step 1 the floor refuses it, if before, step 1 overwrites it. So once the writer answers, the
cache can only hold the new version or newer, and a miss reads the committed row.
The list's version is sum(version) + count(*) over all problems: every create or update raises
it, and a reader computes it from the same snapshot as the list it caches.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kubejudge import protocol
from kubejudge.db.models import Problem, TestCase
from kubejudge_api.judge0_response import format_decimal

PROBLEMS = Problem.__table__
TESTS = TestCase.__table__
WRITE_LOCK = 0x6B6A_7072  # pg advisory lock id for problem writes ("kjpr")

# KEYS: key. ARGV: version, payload ("" for a tombstone), ttl s. Newer entries always win.
_PUT = """
local current = redis.call('GET', KEYS[1])
if current then
  local at = string.find(current, '\\n', 1, true)
  if tonumber(string.sub(current, 1, at - 1)) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1] .. '\\n' .. ARGV[2], 'EX', ARGV[3])
return 1
"""


def _plain_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    value.encode()  # lone surrogates raise UnicodeEncodeError, a ValueError
    return value


Text = Annotated[str, AfterValidator(_plain_text)]


class TestCaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Annotated[Text, Field(max_length=8 * 1024 * 1024)] = ""
    expected_output: Annotated[Text, Field(max_length=8 * 1024 * 1024)] = ""
    hidden: bool = True


class ProblemIn(BaseModel):
    """Create or replace a problem with all its tests (tests run in the order given)."""

    model_config = ConfigDict(extra="forbid")

    slug: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$", max_length=64)]
    title: Annotated[Text, Field(min_length=1, max_length=200)]
    statement: Annotated[Text, Field(max_length=200_000)] = ""
    cpu_time_limit: Annotated[Decimal, Field(gt=0, le=15, decimal_places=3)] = Decimal(2)
    memory_limit: Annotated[int, Field(ge=2048, le=512_000)] = 128_000
    tests: Annotated[list[TestCaseIn], Field(min_length=1, max_length=200)]


class SlugTaken(Exception):
    """Another problem already has this slug."""


class CacheUnavailable(Exception):
    """Redis did not take the invalidation, so the write was rolled back."""


async def create(
    engine: AsyncEngine, redis: Redis, *, problem: ProblemIn, ttl_s: int
) -> int | None:
    async def write(connection: AsyncConnection) -> tuple[int, int] | None:
        values = problem.model_dump(exclude={"tests"})
        problem_id = (
            await connection.execute(
                insert(PROBLEMS).values({**values, "version": 1}).returning(PROBLEMS.c.id)
            )
        ).scalar_one()
        return problem_id, 1

    return await _write(engine, redis, problem=problem, ttl_s=ttl_s, write=write)


async def replace(
    engine: AsyncEngine, redis: Redis, *, problem_id: int, problem: ProblemIn, ttl_s: int
) -> int | None:
    """Replace a problem and its tests; None when there is no such problem."""

    async def write(connection: AsyncConnection) -> tuple[int, int] | None:
        version = (
            await connection.execute(
                update(PROBLEMS)
                .where(PROBLEMS.c.id == problem_id)
                .values(
                    {**problem.model_dump(exclude={"tests"}), "version": PROBLEMS.c.version + 1}
                )
                .returning(PROBLEMS.c.version)
            )
        ).scalar()
        if version is None:
            return None
        await connection.execute(delete(TESTS).where(TESTS.c.problem_id == problem_id))
        return problem_id, version

    return await _write(engine, redis, problem=problem, ttl_s=ttl_s, write=write)


Write = Callable[[AsyncConnection], Awaitable[tuple[int, int] | None]]


async def _write(
    engine: AsyncEngine, redis: Redis, *, problem: ProblemIn, ttl_s: int, write: Write
) -> int | None:
    try:
        async with engine.begin() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": WRITE_LOCK})
            written = await write(connection)
            if written is None:
                return None
            problem_id, version = written
            await connection.execute(
                insert(TESTS),
                [
                    dict(test.model_dump(), problem_id=problem_id, position=position,
                         input=test.input.encode(),
                         expected_output=test.expected_output.encode())
                    for position, test in enumerate(problem.tests, start=1)
                ],
            )  # fmt: skip
            list_version = await _list_version(connection)
            try:
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.eval(_PUT, 1, protocol.problem_cache(problem_id), version, "", ttl_s)
                    pipe.eval(_PUT, 1, protocol.PROBLEM_LIST_CACHE, list_version, "", ttl_s)
                    await pipe.execute()
            except (RedisError, OSError) as error:
                raise CacheUnavailable(str(error)) from error
    except IntegrityError as error:
        raise SlugTaken(problem.slug) from error
    return problem_id


async def get(engine: AsyncEngine, redis: Redis, problem_id: int, *, ttl_s: int) -> Any:
    """The public view of one problem (hidden tests counted, never shown), or None."""
    cached = await _cached(redis, protocol.problem_cache(problem_id))
    if cached is not None:
        return cached
    async with engine.connect() as connection:
        row = (
            (await connection.execute(select(PROBLEMS).where(PROBLEMS.c.id == problem_id)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        tests = (
            (
                await connection.execute(
                    select(TESTS).where(TESTS.c.problem_id == problem_id).order_by(TESTS.c.position)
                )
            )
            .mappings()
            .all()
        )
    public = dict(_summary(row), statement=row["statement"], tests=[
        {"position": test["position"],
         "input": test["input"].decode(errors="replace"),
         "expected_output": test["expected_output"].decode(errors="replace")}
        for test in tests if not test["hidden"]
    ], hidden_tests=sum(1 for test in tests if test["hidden"]))  # fmt: skip
    await _fill(redis, protocol.problem_cache(problem_id), row["version"], public, ttl_s)
    return public


async def listing(engine: AsyncEngine, redis: Redis, *, ttl_s: int) -> Any:
    cached = await _cached(redis, protocol.PROBLEM_LIST_CACHE)
    if cached is not None:
        return cached
    async with engine.connect() as connection:
        rows = (await connection.execute(select(PROBLEMS).order_by(PROBLEMS.c.id))).mappings().all()
    public = [_summary(row) for row in rows]
    version = sum(row["version"] for row in rows) + len(rows)
    await _fill(redis, protocol.PROBLEM_LIST_CACHE, version, public, ttl_s)
    return public


def _summary(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "slug": row["slug"],
        "title": row["title"],
        "cpu_time_limit": format_decimal(row["cpu_time_limit"]),
        "memory_limit": row["memory_limit"],
        "version": row["version"],
    }


async def _list_version(connection: AsyncConnection) -> int:
    total = await connection.execute(
        select(func.coalesce(func.sum(PROBLEMS.c.version), 0) + func.count())
    )
    return int(total.scalar_one())


async def _cached(redis: Redis, key: str) -> Any:
    """The cached value, or None on a miss, a tombstone, or Redis being unreachable."""
    try:
        raw = await redis.get(key)
    except (RedisError, OSError):
        return None
    if raw is None:
        return None
    _, _, payload = raw.partition(b"\n")
    return json.loads(payload) if payload else None


async def _fill(redis: Redis, key: str, version: int, value: Any, ttl_s: int) -> None:
    with contextlib.suppress(RedisError, OSError):  # a cache we cannot fill is a slower read
        await redis.eval(_PUT, 1, key, version, json.dumps(value), ttl_s)
