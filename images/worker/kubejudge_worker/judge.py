"""Judge one submission: compile once, run every test in order, the first failure decides.

Blocking (the worker calls it in a thread) and free of database and Redis code: it takes a
`Job` and returns a `Verdict`. A plain Judge0 submission is a job with one visible test
(its stdin and expected_output) and no per-test results.

A hidden test gives back its verdict (status, and whether memory ran out) and nothing else:
its outputs, exit code, signal, message, time and memory are all chosen by the program, so
any of them would carry the test's input out (`sys.exit(ord(stdin[0]))` is a byte per
submission, and a time or memory figure at any precision is a few bits more). The
submission's `time`, `wall_time` and `memory` are the largest over its visible tests (null
when none ran).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from kubejudge.languages import OPTIONS, Language, compiler_options
from kubejudge.statuses import Status
from kubejudge_worker.sandbox import Box, Limits, RunResult, Sandbox
from kubejudge_worker.verdicts import run_message, run_status

TRUNCATED = b"\n[output truncated]\n"


@dataclass(frozen=True, slots=True)
class Case:
    stdin: bytes
    expected_output: bytes | None
    hidden: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    language: Language
    source: bytes
    compiler_options: str | None
    command_line_arguments: str | None
    limits: Limits
    compile_limits: Limits
    redirect_stderr_to_stdout: bool
    tests: list[Case]
    per_test_results: bool  # a problem submission: report each test's outcome
    number_of_runs: int = 1


@dataclass(slots=True, kw_only=True)
class Verdict:
    status: Status
    stdout: bytes | None = None
    stderr: bytes | None = None
    compile_output: bytes | None = None
    message: str | None = None
    exit_code: int | None = None
    exit_signal: int | None = None
    time: Decimal | None = None
    wall_time: Decimal | None = None
    memory: int | None = None
    memory_limit_exceeded: bool = False
    test_results: list[dict[str, Any]] | None = field(default=None)


def judge(sandbox: Sandbox, job: Job) -> Verdict:
    with sandbox.box(family=job.language.family) as box:
        box.write_file(job.language.source_file, job.source)
        compile_output = None
        if job.language.compile_cmd is not None:
            compiled = _compile(box, job)
            if isinstance(compiled, Verdict):
                return compiled
            compile_output = compiled or None  # warnings, as Judge0 shows them
        try:
            run_cmd = [*job.language.run_cmd, *shlex.split(job.command_line_arguments or "")]
        except ValueError as error:
            return Verdict(status=Status.INTERNAL_ERROR, message=f"command_line_arguments: {error}")
        verdict = _run_tests(box, job, run_cmd)
        verdict.compile_output = compile_output
        return verdict


def _compile(box: Box, job: Job) -> Verdict | bytes:
    """Compile in the box (writable): the compiler's output, or the failing verdict."""
    assert job.language.compile_cmd is not None
    try:  # the api refuses these already; an entry written past it must not run either
        options = compiler_options(job.language, job.compiler_options)
    except ValueError as error:
        return Verdict(
            status=Status.COMPILATION_ERROR, compile_output=f"compiler_options: {error}".encode()
        )
    command: list[str] = []
    for part in job.language.compile_cmd:
        command += options if part == OPTIONS else [part]
    result = box.run(
        command, stdin=b"", limits=job.compile_limits, writable=True, merge_stderr=True
    )
    if result.box_error is not None or result.exec_error is not None:
        return Verdict(
            status=Status.INTERNAL_ERROR, message=run_message(result, Status.INTERNAL_ERROR)
        )
    if result.succeeded:
        return result.stdout
    output = result.stdout + (TRUNCATED if result.output_limit_exceeded else b"")
    message = "Compilation time limit exceeded" if result.wall_timed_out else None
    if result.time_s > job.compile_limits.cpu_time_s:
        message = "Compilation time limit exceeded"
    return Verdict(status=Status.COMPILATION_ERROR, compile_output=output, message=message)


def _run_tests(box: Box, job: Job, run_cmd: list[str]) -> Verdict:
    results: list[dict[str, Any]] = []
    verdict = Verdict(status=Status.ACCEPTED)
    visible: list[RunResult] = []
    memory_limit_exceeded = False
    for number, test in enumerate(job.tests, start=1):
        result = _run_averaged(box, job, run_cmd, test)
        status = run_status(result, limits=job.limits, expected=test.expected_output)
        memory_limit_exceeded |= result.memory_limit_exceeded
        results.append(_test_result(number, status, result, hidden=test.hidden))
        verdict = _from_run(status, result, hidden=test.hidden)
        if not test.hidden:
            visible.append(result)
        if status is not Status.ACCEPTED:
            break
    if visible:
        verdict.time = _seconds(max(result.time_s for result in visible))
        verdict.wall_time = _seconds(max(result.wall_time_s for result in visible))
        verdict.memory = max(result.memory_kb for result in visible)
    verdict.memory_limit_exceeded = memory_limit_exceeded
    verdict.test_results = results if job.per_test_results else None
    return verdict


def _run_averaged(box: Box, job: Job, run_cmd: list[str], test: Case) -> RunResult:
    """Judge0's `number_of_runs`: run up to N times, report the mean time and memory.

    The last run decides the outcome; a run that fails ends the series early.
    """
    runs: list[RunResult] = []
    for _ in range(job.number_of_runs):
        runs.append(
            box.run(
                run_cmd,
                stdin=test.stdin,
                limits=job.limits,
                merge_stderr=job.redirect_stderr_to_stdout,
            )
        )
        if not runs[-1].succeeded:
            break
    if len(runs) == 1:
        return runs[0]
    return replace(
        runs[-1],
        time_s=sum(run.time_s for run in runs) / len(runs),
        wall_time_s=sum(run.wall_time_s for run in runs) / len(runs),
        memory_kb=round(sum(run.memory_kb for run in runs) / len(runs)),
    )


def _from_run(status: Status, result: RunResult, *, hidden: bool) -> Verdict:
    if hidden:
        return Verdict(status=status)
    stdout = result.stdout + (TRUNCATED if result.output_limit_exceeded else b"")
    return Verdict(
        status=status,
        stdout=stdout,
        stderr=result.stderr,
        message=run_message(result, status),
        exit_code=result.exit_code if result.exit_code is not None else 0,
        exit_signal=result.exit_signal,
    )


def _test_result(number: int, status: Status, result: RunResult, *, hidden: bool) -> dict[str, Any]:
    """One entry of `test_results`: the outcome only, never a test's input or output (and of
    a hidden test, no figure either)."""
    return {
        "test": number,
        "hidden": hidden,
        "status": status.public(),
        "time": None if hidden else str(_seconds(result.time_s)),
        "memory": None if hidden else result.memory_kb,
        "memory_limit_exceeded": result.memory_limit_exceeded,
    }


def _seconds(value: float) -> Decimal:
    return Decimal(value).quantize(Decimal("0.001"))
