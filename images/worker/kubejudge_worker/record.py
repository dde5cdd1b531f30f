"""The submission row, the system of record: claim it for an attempt, write its verdict.

Fencing (DESIGN.md guarantee 1): every claim bumps `attempt`; a verdict is written only
`WHERE attempt = <ours> AND status_id IN (1, 2)`, so an attempt that was given up on (its
worker presumed dead) can never overwrite a newer one, and a submission that is already
final is never judged or published twice.

Both run on every submission, so each takes a batch (the submissions a worker has in flight,
see `batching`) in one statement, fenced row by row, and a slot's next claim and its last
verdict, ready at the same moment, go in one statement together. They are Core statements
compiled once
and sent over raw asyncpg, as the api's accept path does: SQLAlchemy's execution (its
greenlets, pool checkout and result processing) was half the worker's own CPU per submission,
on the event loop every other slot shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    ARRAY,
    Integer,
    String,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

from kubejudge import protocol
from kubejudge.db.engine import create_pool
from kubejudge.db.models import Submission, TestCase
from kubejudge.languages import LANGUAGES
from kubejudge.settings import Settings
from kubejudge.statuses import Status
from kubejudge_worker.judge import Case, Job, Verdict
from kubejudge_worker.sandbox import Limits

UNFINISHED = tuple(int(status) for status in Status if not status.is_final)
SUBMISSIONS = Submission.__table__
TEST_CASES = TestCase.__table__

# A claim returns what judging and the status event read; an earlier attempt's outputs and
# the unused additional_files stay in the database.
_CLAIMED = [
    column
    for column in SUBMISSIONS.c
    if column.name not in {"stdout", "stderr", "compile_output", "additional_files"}
]
# A verdict write returns what the verdict's event reports, whose feed it goes to, when it was
# submitted and the attempt that wrote it: not the outputs, which can be megabytes the worker
# has just sent.
_FINAL_NAMES = {*protocol.JudgedRow.__annotations__, "owner", "created_at", "attempt"}
_FINAL = [column for column in SUBMISSIONS.c if column.name in _FINAL_NAMES]

_CLAIM = (
    update(SUBMISSIONS)
    .where(
        SUBMISSIONS.c.token == any_(bindparam("claimed_tokens", type_=ARRAY(String))),
        SUBMISSIONS.c.status_id == any_(literal(list(UNFINISHED), ARRAY(Integer))),
    )
    .values(
        status_id=int(Status.PROCESSING),
        attempt=SUBMISSIONS.c.attempt + 1,
        started_at=bindparam("now"),
    )
    .returning(*_CLAIMED)
)
_TESTS = (
    select(TEST_CASES.c.problem_id, TEST_CASES.c.input, TEST_CASES.c.expected_output,
           TEST_CASES.c.hidden)
    .where(TEST_CASES.c.problem_id == any_(bindparam("problems", type_=ARRAY(Integer))))
    .order_by(TEST_CASES.c.problem_id, TEST_CASES.c.position)
)  # fmt: skip

# A batch of verdicts goes as one array a column, unnested into rows (one statement for any
# batch size). test_results goes as JSON text, so that no results is SQL NULL, as everywhere
# else, rather than a JSON null.
_FENCE_COLUMNS = ("token", "attempt")
_VERDICT_COLUMNS = (
    "status_id", "stdout", "stderr", "compile_output", "message", "exit_code", "exit_signal",
    "time", "wall_time", "memory", "memory_limit_exceeded", "test_results", "finished_at",
)  # fmt: skip
_SENT_AS = {"test_results": Text()}
_VERDICTS = (
    func.unnest(
        *(
            cast(bindparam(f"all_{name}"), ARRAY(_SENT_AS.get(name, SUBMISSIONS.c[name].type)))
            for name in (*_FENCE_COLUMNS, *_VERDICT_COLUMNS)
        )
    )
    .table_valued(*_FENCE_COLUMNS, *_VERDICT_COLUMNS)
    .render_derived(name="verdicts")
)
_FINISH = (
    update(SUBMISSIONS)
    .where(
        SUBMISSIONS.c.token == _VERDICTS.c.token,
        SUBMISSIONS.c.attempt == _VERDICTS.c.attempt,
        SUBMISSIONS.c.status_id == any_(literal(list(UNFINISHED), ARRAY(Integer))),
    )
    .values(
        {
            name: cast(_VERDICTS.c[name], JSONB) if name in _SENT_AS else _VERDICTS.c[name]
            for name in _VERDICT_COLUMNS
        }
    )
    .returning(*_FINAL)
)


_RETURNED = {column.name for column in (*_CLAIMED, *_FINAL)}


def _as_written(statement: Any, kind: str) -> Any:
    """The rows `statement` (a CTE) returned, with every column either statement returns
    (NULL where this one does not), after a `kind` column saying which it was."""
    return select(
        literal(kind).label("kind"),
        *(
            statement.c[column.name]
            if column.name in statement.c
            else cast(null(), column.type).label(column.name)
            for column in SUBMISSIONS.c
            if column.name in _RETURNED
        ),
    )


_CLAIM_AND_FINISH = union_all(
    _as_written(_FINISH.cte("finished"), "finished"), _as_written(_CLAIM.cte("claimed"), "claimed")
)


@dataclass(frozen=True, slots=True)
class _Compiled:
    """A statement as asyncpg takes it: its SQL, and its parameters in order, each given at
    the call or fixed in the statement."""

    sql: str
    names: tuple[str, ...]
    fixed: Mapping[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> _Compiled:
        compiled = statement.compile(dialect=asyncpg_dialect())
        fixed = {name: bind.value for name, bind in compiled.binds.items()}
        return cls(str(compiled), tuple(compiled.positiontup or ()), fixed)

    def args(self, given: Mapping[str, Any]) -> list[Any]:
        return [given[name] if name in given else self.fixed[name] for name in self.names]


_CLAIM_SQL = _Compiled.of(_CLAIM)
_TESTS_SQL = _Compiled.of(_TESTS)
_FINISH_SQL = _Compiled.of(_FINISH)
_CLAIM_AND_FINISH_SQL = _Compiled.of(_CLAIM_AND_FINISH)


class Stored:
    """A row as PostgreSQL returned it, its columns read as attributes."""

    __slots__ = ("_record",)

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._record[name]
        except KeyError:
            raise AttributeError(name) from None


async def connect(settings: Settings, *, concurrency: int) -> asyncpg.Pool:
    """The worker's connections: one for each batch in flight and the odd one-off (a
    give-up), with room to spare. A connection PostgreSQL dropped fails its statement, which
    is retried like any infrastructure error, on a new one."""
    return await create_pool(settings, min_size=0, max_size=concurrency + 2, init=_decode_json)


async def _decode_json(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", schema="pg_catalog", encoder=json.dumps, decoder=json.loads
    )


@dataclass(frozen=True, slots=True)
class Claim:
    submission: Stored  # the row as our attempt found it (status Processing)
    job: Job  # what the sandbox judges


@dataclass(frozen=True, slots=True)
class Outcome:
    """A finished attempt's verdict, to be written if the attempt is still current."""

    token: str
    attempt: int
    verdict: Verdict
    finished_at: datetime


async def claim(
    pg: asyncpg.Pool, tokens: Sequence[str], *, compile_limits: Limits
) -> list[Claim | None]:
    """Start an attempt on each token's submission: Processing, attempt + 1. Each token's
    claim, or None where the submission is final or unknown."""
    claims: dict[int, Claim] = {}
    # A token twice in one batch (two entries of it in flight) is claimed twice, as it would
    # be one at a time: the later attempt fences the earlier out.
    # One statement a round, so autocommit: no BEGIN and COMMIT round trips around it.
    async with pg.acquire() as connection:
        for round_ in _rounds(tokens):
            given = {"claimed_tokens": [tokens[i] for i in round_], "now": now()}
            found = await connection.fetch(_CLAIM_SQL.sql, *_CLAIM_SQL.args(given))
            claimed = await _claims(connection, found, compile_limits)
            claims |= {i: claimed[tokens[i]] for i in round_ if tokens[i] in claimed}
    return [claims.get(i) for i in range(len(tokens))]


async def claim_and_finish(
    pg: asyncpg.Pool, tokens: Sequence[str], outcomes: Sequence[Outcome], *, compile_limits: Limits
) -> tuple[list[Claim | None], list[Stored | None]]:
    """`claim(tokens)` and `finish(outcomes)`, in one statement where they can share one: the
    tokens distinct, and none of them in `outcomes` (PostgreSQL applies only one of two
    updates of a row in one statement). Else the verdicts first, then the claims, as they
    would go one after the other."""
    finishing = {outcome.token for outcome in outcomes}
    if not (tokens and outcomes) or len(set(tokens)) < len(tokens) or finishing & set(tokens):
        finals = await finish(pg, outcomes) if outcomes else []
        return (await claim(pg, tokens, compile_limits=compile_limits) if tokens else []), finals
    given = {"claimed_tokens": list(tokens), "now": now(), **_verdict_columns(outcomes)}
    async with pg.acquire() as connection:
        found = await connection.fetch(
            _CLAIM_AND_FINISH_SQL.sql, *_CLAIM_AND_FINISH_SQL.args(given)
        )
        claimed = [row for row in found if row["kind"] == "claimed"]
        claims = await _claims(connection, claimed, compile_limits)
    finished = [row for row in found if row["kind"] == "finished"]
    return [claims.get(token) for token in tokens], _finals(finished, outcomes)


async def _claims(
    connection: asyncpg.Connection, found: Sequence[asyncpg.Record], compile_limits: Limits
) -> dict[str, Claim]:
    """The claimed rows, with their jobs, by token."""
    rows = [Stored(row) for row in found]
    tests = await _tests(connection, rows)
    return {row.token: Claim(row, _job(row, tests, compile_limits)) for row in rows}


def _rounds(tokens: Sequence[str]) -> list[list[int]]:
    """Positions of `tokens` in rounds of distinct tokens, first occurrences first."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for i, token in enumerate(tokens):
        depth = seen.get(token, 0)
        seen[token] = depth + 1
        if depth == len(rounds):
            rounds.append([])
        rounds[depth].append(i)
    return rounds


async def _tests(
    connection: asyncpg.Connection, submissions: Iterable[Stored]
) -> dict[int, list[Case]]:
    """The tests of the problems among `submissions`, in order, by problem."""
    problems = sorted({row.problem_id for row in submissions if row.problem_id is not None})
    tests: dict[int, list[Case]] = {problem: [] for problem in problems}
    if problems:
        for problem, given, expected, hidden in await connection.fetch(
            _TESTS_SQL.sql, *_TESTS_SQL.args({"problems": problems})
        ):
            tests[problem].append(Case(stdin=given, expected_output=expected, hidden=hidden))
    return tests


def _job(submission: Stored, tests: dict[int, list[Case]], compile_limits: Limits) -> Job:
    if submission.problem_id is None:
        cases = [Case(stdin=submission.stdin or b"", expected_output=submission.expected_output)]
    else:
        cases = tests[submission.problem_id]
    return Job(
        language=LANGUAGES[submission.language_id],
        source=submission.source_code or b"",
        compiler_options=submission.compiler_options,
        command_line_arguments=submission.command_line_arguments,
        limits=Limits(
            cpu_time_s=float(submission.cpu_time_limit),
            cpu_extra_time_s=float(submission.cpu_extra_time),
            wall_time_s=float(submission.wall_time_limit),
            memory_kb=submission.memory_limit,
            stack_kb=submission.stack_limit,
            max_processes=submission.max_processes_and_or_threads,
            max_file_size_kb=submission.max_file_size,
            output_limit_bytes=max(submission.max_file_size, 1) * 1024,
        ),
        compile_limits=compile_limits,
        redirect_stderr_to_stdout=submission.redirect_stderr_to_stdout,
        tests=cases,
        per_test_results=submission.problem_id is not None,
        number_of_runs=max(1, submission.number_of_runs),
    )


async def finish(pg: asyncpg.Pool, outcomes: Sequence[Outcome]) -> list[Stored | None]:
    """Write each outcome's verdict if its attempt is still current (one statement, fenced row
    by row); each one's final row, or None where it was fenced out."""
    # One statement, so autocommit: no BEGIN and COMMIT round trips around it.
    found = await pg.fetch(_FINISH_SQL.sql, *_FINISH_SQL.args(_verdict_columns(outcomes)))
    return _finals(found, outcomes)


def _verdict_columns(outcomes: Sequence[Outcome]) -> dict[str, list[Any]]:
    """The outcomes as the verdict write takes them: one array a column."""
    columns: dict[str, list[Any]] = {
        f"all_{name}": [] for name in (*_FENCE_COLUMNS, *_VERDICT_COLUMNS)
    }
    for outcome in outcomes:
        for name, value in _row_values(outcome).items():
            columns[f"all_{name}"].append(value)
    return columns


def _finals(found: Sequence[asyncpg.Record], outcomes: Sequence[Outcome]) -> list[Stored | None]:
    """Each outcome's final row, or None where it was fenced out."""
    written = {(row["token"], row["attempt"]): Stored(row) for row in found}
    return [written.get((outcome.token, outcome.attempt)) for outcome in outcomes]


def _row_values(outcome: Outcome) -> dict[str, Any]:
    verdict = outcome.verdict
    return {
        "token": outcome.token,
        "attempt": outcome.attempt,
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
        "test_results": None if verdict.test_results is None else json.dumps(verdict.test_results),
        "finished_at": outcome.finished_at,
    }


def now() -> datetime:
    return datetime.now(UTC)
