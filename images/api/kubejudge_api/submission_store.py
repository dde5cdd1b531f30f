"""Submissions in PostgreSQL, the system of record: insert (with idempotency keys), read, page.

Rows come back as mappings of column name to value, which is what `judge0_response.render`
reads. Reads use SQLAlchemy Core; the inserts, the api's hottest path, use asyncpg directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge.db.models import Submission
from kubejudge.statuses import Status
from kubejudge_api import judge0_request
from kubejudge_api.judge0_request import InvalidSubmission, NewSubmission

SUBMISSIONS = Submission.__table__
Row = Mapping[str, Any]

# Inserts go straight through asyncpg with prepared statements: SQLAlchemy's statement
# building cost more CPU than everything else on the accept path together.
WRITTEN = (
    *judge0_request.COLUMNS, "token", "owner", "idempotency_key", "problem_id", "status_id",
    "memory_limit_exceeded", "attempt",
)  # fmt: skip
# Column names are constants above; every value is a bound parameter.
_PLACEHOLDERS = ", ".join(f"${n}" for n in range(1, len(WRITTEN) + 1))
INSERT = f"INSERT INTO submissions ({', '.join(WRITTEN)}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
INSERT_RETURNING = f"{INSERT} RETURNING token"
INSERT_IDEMPOTENT = (
    f"{INSERT} ON CONFLICT ON CONSTRAINT submissions_owner_idempotency_key DO NOTHING"
    " RETURNING token"
)


# The columns a problem sets for its submissions (see `problem_limits`).
PROBLEM_GOVERNED = frozenset({
    "cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit",
    "max_processes_and_or_threads", "max_file_size", "number_of_runs",
})  # fmt: skip
REUSED_KEY = {"Idempotency-Key": ["has already been used with a different request"]}
_EARLIER = (
    f"SELECT token, problem_id, {', '.join(judge0_request.COLUMNS)} FROM submissions"  # noqa: S608
    " WHERE owner = $1 AND idempotency_key = $2"
)


@dataclass(frozen=True, slots=True)
class Accepted:
    token: str
    language_id: int
    created: bool  # False when an Idempotency-Key named an earlier submission


@dataclass(frozen=True, slots=True)
class Page:
    rows: Sequence[Row]
    total: int
    page: int
    per_page: int

    def meta(self) -> dict[str, int | None]:
        """Judge0's (will_paginate's) pagination block."""
        pages = -(-self.total // self.per_page) if self.per_page else 0
        return {
            "current_page": self.page,
            "next_page": self.page + 1 if self.page < pages else None,
            "prev_page": self.page - 1 if self.page > 1 else None,
            "total_pages": pages,
            "total_count": self.total,
        }


def new_token() -> str:
    return str(uuid.uuid4())


def is_token(text: str) -> bool:
    """Tokens are UUIDs; anything else cannot name a submission (and never reaches SQL)."""
    try:
        return str(uuid.UUID(text)) == text.lower() and len(text) == 36
    except ValueError:
        return False


async def insert_one(
    pool: asyncpg.Pool,
    *,
    new: NewSubmission,
    owner: str | None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Commit one submission; with an idempotency key, the first one made with it wins, and
    the key made with a different request raises `InvalidSubmission` (Judge0's 422 shape).

    One autocommitted INSERT: the problem's foreign key and the idempotency constraint hold
    without a transaction around the statements (problems are never deleted)."""
    async with pool.acquire() as connection:
        row = await _row(connection, new=new, owner=owner, idempotency_key=idempotency_key)
        if idempotency_key is None:
            token = await connection.fetchval(INSERT_RETURNING, *row)
        else:
            token = await connection.fetchval(INSERT_IDEMPOTENT, *row)
            if token is None:  # a submission with this key exists (or just committed)
                earlier = await connection.fetchrow(_EARLIER, owner, idempotency_key)
                if not same_request(earlier, new):
                    raise InvalidSubmission(REUSED_KEY)
                return Accepted(
                    token=earlier["token"], language_id=earlier["language_id"], created=False
                )
        return Accepted(token=token, language_id=new.columns["language_id"], created=True)


async def insert_many(
    pool: asyncpg.Pool, *, items: Sequence[NewSubmission], owner: str | None
) -> list[Accepted | InvalidSubmission]:
    """Commit the valid items of a batch together; per item a token or its errors."""
    results: list[Accepted | InvalidSubmission] = []
    rows: list[tuple[Any, ...]] = []
    async with pool.acquire() as connection, connection.transaction():
        for item in items:
            try:
                row = await _row(connection, new=item, owner=owner, idempotency_key=None)
            except InvalidSubmission as invalid:
                results.append(invalid)
                continue
            rows.append(row)
            token = row[WRITTEN.index("token")]
            results.append(
                Accepted(token=token, language_id=item.columns["language_id"], created=True)
            )
        if rows:
            await connection.executemany(INSERT, rows)
    return results


async def get(engine: AsyncEngine, token: str) -> Row | None:
    if not is_token(token):
        return None
    async with engine.connect() as connection:
        result = await connection.execute(select(SUBMISSIONS).where(SUBMISSIONS.c.token == token))
        row = result.mappings().first()
    return row


async def get_many(engine: AsyncEngine, tokens: Sequence[str]) -> dict[str, Row]:
    wanted = [token for token in tokens if is_token(token)]
    if not wanted:
        return {}
    async with engine.connect() as connection:
        result = await connection.execute(
            select(SUBMISSIONS).where(SUBMISSIONS.c.token.in_(wanted))
        )
        return {row["token"]: row for row in result.mappings()}


async def page(engine: AsyncEngine, *, owner: str | None, page: int, per_page: int) -> Page:
    """Newest first; `owner=None` pages every submission (Judge0's authorized listing)."""
    condition = SUBMISSIONS.c.owner == owner if owner is not None else True
    async with engine.connect() as connection:
        total = (
            await connection.execute(select(func.count()).select_from(SUBMISSIONS).where(condition))
        ).scalar_one()
        rows = (
            await connection.execute(
                select(SUBMISSIONS)
                .where(condition)
                .order_by(SUBMISSIONS.c.created_at.desc(), SUBMISSIONS.c.id.desc())
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
        ).mappings()
        return Page(rows=list(rows), total=total, page=page, per_page=per_page)


async def _row(
    connection: asyncpg.Connection,
    *,
    new: NewSubmission,
    owner: str | None,
    idempotency_key: str | None,
) -> tuple[Any, ...]:
    """The values of `WRITTEN`, in order, for one new submission."""
    values = dict(
        new.columns,
        token=new_token(),
        owner=owner,
        idempotency_key=idempotency_key,
        problem_id=new.problem_id,
        status_id=int(Status.IN_QUEUE),
        memory_limit_exceeded=False,
        attempt=0,
    )
    if new.problem_id is not None:
        problem = await connection.fetchrow(
            "SELECT cpu_time_limit, memory_limit FROM problems WHERE id = $1", new.problem_id
        )
        if problem is None:
            raise InvalidSubmission(
                {"problem_id": [f"problem with id {new.problem_id} doesn't exist"]}
            )
        values.update(
            problem_limits(
                cpu_time_limit=problem["cpu_time_limit"], memory_limit=problem["memory_limit"]
            )
        )
    return tuple(values[column] for column in WRITTEN)


def problem_limits(*, cpu_time_limit: Decimal, memory_limit: int) -> dict[str, Any]:
    """Every cost-bearing column of a submission judged against a problem, whatever the caller
    asked for: one submission costs at most tests x one run x the problem's limits.

    The problem sets the CPU time and memory; one run per test; the wall clock is twice the
    CPU time (Judge0's own default ratio, 10 s for 5 s) within Judge0's 1 to 20 s; the rest
    are Judge0's defaults."""
    _, wall_low, wall_high = judge0_request.DECIMAL_LIMITS["wall_time_limit"]
    governed: dict[str, Any] = {
        name: judge0_request.INTEGER_LIMITS[name][0]
        for name in ("stack_limit", "max_processes_and_or_threads", "max_file_size")
    }
    governed.update(
        cpu_time_limit=cpu_time_limit,
        memory_limit=memory_limit,
        number_of_runs=1,
        cpu_extra_time=judge0_request.DECIMAL_LIMITS["cpu_extra_time"][0],
        wall_time_limit=min(max(2 * cpu_time_limit, wall_low), wall_high),
    )
    return governed


def same_request(earlier: Row, new: NewSubmission) -> bool:
    """Did `earlier` come from the same request as `new`: the same value in every column the
    caller sets (the limits a problem governs are not the caller's)? Compared as validated, so
    key order, Base64 or not, and spelling a default out make no difference."""
    if earlier["problem_id"] != new.problem_id:
        return False
    ignored = PROBLEM_GOVERNED if new.problem_id is not None else frozenset()
    return all(
        earlier[column] == new.columns[column]
        for column in judge0_request.COLUMNS
        if column not in ignored
    )
