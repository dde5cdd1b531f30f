"""The submission row, the system of record: claim it for an attempt, write its verdict.

Fencing (DESIGN.md guarantee 1): every claim bumps `attempt`; a verdict is written only
`WHERE attempt = <ours> AND status_id IN (1, 2)`, so an attempt that was given up on (its
worker presumed dead) can never overwrite a newer one, and a submission that is already
final is never judged or published twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kubejudge.db.engine import sessionmaker
from kubejudge.db.models import Submission, TestCase
from kubejudge.statuses import Status
from kubejudge_worker.judge import Case, Verdict

UNFINISHED = (int(Status.IN_QUEUE), int(Status.PROCESSING))


@dataclass(frozen=True, slots=True)
class Claim:
    submission: Submission  # the row as our attempt found it (status Processing)
    tests: list[Case]


async def claim(engine: AsyncEngine, token: str) -> Claim | None:
    """Start an attempt: Processing, attempt + 1. None if the submission is final or unknown."""
    statement = (
        update(Submission)
        .where(Submission.token == token, Submission.status_id.in_(UNFINISHED))
        .values(
            status_id=int(Status.PROCESSING),
            attempt=Submission.attempt + 1,
            started_at=datetime.now(UTC),
        )
        .returning(Submission)
    )
    async with sessionmaker(engine)() as session, session.begin():
        submission = (await session.execute(statement)).scalar_one_or_none()
        if submission is None:
            return None
        tests = await _tests(session, submission)
    return Claim(submission=submission, tests=tests)


async def _tests(session: AsyncSession, submission: Submission) -> list[Case]:
    if submission.problem_id is None:
        return [Case(stdin=submission.stdin or b"", expected_output=submission.expected_output)]
    rows = await session.execute(
        select(TestCase.input, TestCase.expected_output, TestCase.hidden)
        .where(TestCase.problem_id == submission.problem_id)
        .order_by(TestCase.position)
    )
    return [Case(stdin=i, expected_output=o, hidden=h) for i, o, h in rows]


async def finish(
    engine: AsyncEngine, *, token: str, attempt: int, verdict: Verdict
) -> Submission | None:
    """Write the verdict if `attempt` is still current; the final row, or None if fenced out."""
    statement = (
        update(Submission)
        .where(
            Submission.token == token,
            Submission.attempt == attempt,
            Submission.status_id.in_(UNFINISHED),
        )
        .values(
            status_id=int(verdict.status),
            stdout=verdict.stdout,
            stderr=verdict.stderr,
            compile_output=verdict.compile_output,
            message=verdict.message,
            exit_code=verdict.exit_code,
            exit_signal=verdict.exit_signal,
            time=verdict.time,
            wall_time=verdict.wall_time,
            memory=verdict.memory,
            memory_limit_exceeded=verdict.memory_limit_exceeded,
            test_results=verdict.test_results,
            finished_at=datetime.now(UTC),
        )
        .returning(Submission)
    )
    async with sessionmaker(engine)() as session, session.begin():
        return (await session.execute(statement)).scalar_one_or_none()
