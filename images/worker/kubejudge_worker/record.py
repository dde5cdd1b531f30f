"""The submission row, the system of record: claim it for an attempt, write its verdict.

Fencing (DESIGN.md guarantee 1): every claim bumps `attempt`; a verdict is written only
`WHERE attempt = <ours> AND status_id IN (1, 2)`, so an attempt that was given up on (its
worker presumed dead) can never overwrite a newer one, and a submission that is already
final is never judged or published twice.

Both run on every submission, so they are prebuilt Core statements on a plain connection
returning plain rows: the ORM's per-call statement building, session and identity map cost
about twice as much CPU, on the event loop every other slot shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from kubejudge.db.models import Submission, TestCase
from kubejudge.statuses import Status
from kubejudge_worker.judge import Case, Verdict

UNFINISHED = (int(Status.IN_QUEUE), int(Status.PROCESSING))
SUBMISSIONS = Submission.__table__
TEST_CASES = TestCase.__table__

# A claim returns what judging and the status event read; an earlier attempt's outputs and
# the unused additional_files stay in the database.
_CLAIMED = [
    column
    for column in SUBMISSIONS.c
    if column.name not in {"stdout", "stderr", "compile_output", "additional_files"}
]
# A verdict write returns the row as stored, less the request's inputs (source, stdin, ...).
_FINAL = [
    column
    for column in SUBMISSIONS.c
    if column.name not in {"source_code", "stdin", "expected_output", "additional_files"}
]

_CLAIM = (
    update(SUBMISSIONS)
    .where(
        SUBMISSIONS.c.token == bindparam("claimed_token"),
        SUBMISSIONS.c.status_id.in_(UNFINISHED),
    )
    .values(
        status_id=int(Status.PROCESSING),
        attempt=SUBMISSIONS.c.attempt + 1,
        started_at=bindparam("now"),
    )
    .returning(*_CLAIMED)
)
# The SET clause also takes every column named in the parameters (see `_verdict_values`).
_FINISH = (
    update(SUBMISSIONS)
    .where(
        SUBMISSIONS.c.token == bindparam("fenced_token"),
        SUBMISSIONS.c.attempt == bindparam("fenced_attempt"),
        SUBMISSIONS.c.status_id.in_(UNFINISHED),
    )
    # Typed so that no results is SQL NULL, as everywhere else, rather than a JSON null.
    .values(test_results=bindparam("results", type_=JSONB(none_as_null=True)))
    .returning(*_FINAL)
)
_TESTS = (
    select(TEST_CASES.c.input, TEST_CASES.c.expected_output, TEST_CASES.c.hidden)
    .where(TEST_CASES.c.problem_id == bindparam("problem"))
    .order_by(TEST_CASES.c.position)
)


@dataclass(frozen=True, slots=True)
class Claim:
    submission: Row[Any]  # the row as our attempt found it (status Processing)
    tests: list[Case]


async def claim(engine: AsyncEngine, token: str) -> Claim | None:
    """Start an attempt: Processing, attempt + 1. None if the submission is final or unknown."""
    async with engine.begin() as connection:
        result = await connection.execute(_CLAIM, {"claimed_token": token, "now": _now()})
        submission = result.one_or_none()
        if submission is None:
            return None
        tests = await _tests(connection, submission)
    return Claim(submission, tests)


async def _tests(connection: AsyncConnection, submission: Row[Any]) -> list[Case]:
    if submission.problem_id is None:
        return [Case(stdin=submission.stdin or b"", expected_output=submission.expected_output)]
    rows = await connection.execute(_TESTS, {"problem": submission.problem_id})
    return [Case(stdin=i, expected_output=o, hidden=h) for i, o, h in rows]


async def finish(
    engine: AsyncEngine, *, token: str, attempt: int, verdict: Verdict
) -> Row[Any] | None:
    """Write the verdict if `attempt` is still current; the final row, or None if fenced out."""
    parameters = {"fenced_token": token, "fenced_attempt": attempt, **_verdict_values(verdict)}
    # One statement, so autocommit: no BEGIN and COMMIT round trips around it.
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        return (await connection.execute(_FINISH, parameters)).one_or_none()


def _verdict_values(verdict: Verdict) -> dict[str, Any]:
    return {
        "status_id": int(verdict.status),
        "stdout": verdict.stdout,
        "stderr": verdict.stderr,
        "compile_output": verdict.compile_output,
        "message": verdict.message,
        "exit_code": verdict.exit_code,
        "exit_signal": verdict.exit_signal,
        "time": verdict.time,
        "wall_time": verdict.wall_time,
        "memory": verdict.memory,
        "memory_limit_exceeded": verdict.memory_limit_exceeded,
        "results": verdict.test_results,
        "finished_at": _now(),
    }


def _now() -> datetime:
    return datetime.now(UTC)
