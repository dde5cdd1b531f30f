"""Submissions in PostgreSQL, the system of record: insert (with idempotency keys), read, page.

Rows come back as mappings of column name to value, which is what `judge0_response.render`
reads. SQLAlchemy Core, not the ORM: the accept path is the api's hottest.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kubejudge.db.models import Problem, Submission
from kubejudge_api.judge0_request import InvalidSubmission, NewSubmission

SUBMISSIONS = Submission.__table__
Row = Mapping[str, Any]


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
    engine: AsyncEngine,
    *,
    new: NewSubmission,
    owner: str | None,
    idempotency_key: str | None = None,
) -> Accepted:
    """Commit one submission; with an idempotency key, the first one made with it wins."""
    async with engine.begin() as connection:
        values = await _row_values(connection, new=new, owner=owner)
        values["idempotency_key"] = idempotency_key
        statement = insert(SUBMISSIONS).values(values).returning(SUBMISSIONS.c.token)
        if idempotency_key is not None:
            statement = statement.on_conflict_do_nothing(
                constraint="submissions_owner_idempotency_key"
            )
        token = (await connection.execute(statement)).scalar()
        if token is not None:
            return Accepted(token=token, language_id=values["language_id"], created=True)
        earlier = (
            await connection.execute(
                select(SUBMISSIONS.c.token, SUBMISSIONS.c.language_id).where(
                    SUBMISSIONS.c.owner == owner,
                    SUBMISSIONS.c.idempotency_key == idempotency_key,
                )
            )
        ).one()
        return Accepted(token=earlier.token, language_id=earlier.language_id, created=False)


async def insert_many(
    engine: AsyncEngine, *, items: Sequence[NewSubmission], owner: str | None
) -> list[Accepted | InvalidSubmission]:
    """Commit the valid items of a batch in one statement; per item a token or its errors."""
    results: list[Accepted | InvalidSubmission] = []
    rows: list[dict[str, Any]] = []
    async with engine.begin() as connection:
        for item in items:
            try:
                values = await _row_values(connection, new=item, owner=owner)
            except InvalidSubmission as invalid:
                results.append(invalid)
                continue
            rows.append(values)
            results.append(
                Accepted(token=values["token"], language_id=values["language_id"], created=True)
            )
        if rows:
            await connection.execute(insert(SUBMISSIONS), rows)
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


async def _row_values(
    connection: AsyncConnection, *, new: NewSubmission, owner: str | None
) -> dict[str, Any]:
    values = dict(new.columns, token=new_token(), owner=owner, problem_id=new.problem_id)
    if new.problem_id is not None:
        # A problem's own limits apply to every submission judged against it.
        problem = (
            await connection.execute(
                select(Problem.cpu_time_limit, Problem.memory_limit).where(
                    Problem.id == new.problem_id
                )
            )
        ).first()
        if problem is None:
            raise InvalidSubmission(
                {"problem_id": [f"problem with id {new.problem_id} doesn't exist"]}
            )
        values["cpu_time_limit"] = problem.cpu_time_limit
        values["memory_limit"] = problem.memory_limit
    return values
