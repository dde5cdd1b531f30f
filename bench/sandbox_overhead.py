"""Sandbox overhead and end-to-end judging throughput.

    .venv/bin/python bench/sandbox_overhead.py [--runs 5] [--execs 100] [--submissions 200]
                                               [--concurrency CORES] [--profile FILE]

1. Cost per run of a trivial program (C `return 0`, Python `pass`): bare (posix_spawn + wait,
   nothing else) versus through our sandbox (`Box.run` from a judging thread, as the worker
   does: a kept box server in its memory cgroup and bubblewrap box, boxd's fresh namespaces
   per run, pipes, report). `--execs` runs each, median per repetition; the figure reported is
   the median over `--runs` repetitions. Target: overhead < 5 ms per run.
2. End to end: a local Redis and PostgreSQL (kubejudge_dev.localservices), `--submissions` Python
   submissions inserted and enqueued, then one in-process worker (concurrency = cores unless
   `--concurrency`, on uvloop as `kubejudge worker` runs) judges them all (claim, Processing
   event, sandboxed run, fenced verdict, verdict event, ack). Reported: submissions/s, per
   core, and as a share of the bare-exec limit (cores / bare Python run time), target >= 60 %
   (stretch 70 %); and the worker's own cost per submission, target <= 1.5 ms together: CPU
   of its event-loop thread (everything but the sandboxed runs, which are in threads and
   boxes; the bench waits for the queue to empty from a thread of its own), the CPU of the
   Redis and PostgreSQL servers (with its backends); and Redis round trips. `--profile FILE`
   adds one uncounted run profiled by pyinstrument.
3. The sandbox alone: the same submissions judged by `judge()` from `concurrency` threads, no
   queue, database or worker loop: where the end-to-end figure would be if those cost nothing.
   This machine's speed drifts by a third within minutes, so each repetition of 2 and 3 has
   its own bare-exec limit, measured just before it, and the share reported is the median of
   the repetitions' shares.
4. A realistic workload: a problem with 10 hidden tests (read n, print 2n), in C++ and in
   Python, `--problem-submissions` of each judged by `judge()` from `concurrency` threads
   (compile once, run each test), against the same work done bare from as many threads (the
   same compiler command in a scratch folder, then posix_spawn of each test with pipes and a
   comparison of the output): judged submissions/s, and milliseconds per test (wall time of
   the lot, per test, per thread), each way.

Needs root (setpriv, memory cgroups), bubblewrap and PostgreSQL binaries. Prints a table and
one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvloop
from kubejudge_dev import localservices
from kubejudge_worker import record
from kubejudge_worker.judge import Case, Job, judge
from kubejudge_worker.sandbox import Box, Limits, Sandbox, SandboxConfig
from kubejudge_worker.settings import WorkerSettings
from kubejudge_worker.verdicts import run_status
from kubejudge_worker.worker import Worker
from pyinstrument import Profiler
from redis import Redis as SyncRedis
from redis.asyncio import Connection, Redis
from sqlalchemy import func, select, text

from kubejudge import protocol, queue
from kubejudge.db.engine import create_engine, migrate, sessionmaker
from kubejudge.db.models import Submission
from kubejudge.languages import LANGUAGES, OPTIONS
from kubejudge.settings import Settings
from kubejudge.statuses import Status

LIMITS = Limits(
    cpu_time_s=2, cpu_extra_time_s=0.5, wall_time_s=5, memory_kb=128_000, stack_kb=64_000,
    max_processes=60, max_file_size_kb=1024, output_limit_bytes=1 << 20,
)  # fmt: skip
COMPILE = Limits(
    cpu_time_s=10, cpu_extra_time_s=0, wall_time_s=20, memory_kb=512_000, stack_kb=64_000,
    max_processes=128, max_file_size_kb=65_536, output_limit_bytes=1 << 16,
)  # fmt: skip
PYTHON = ["/usr/bin/python3", "-c", "pass"]
# The realistic workload: read n, print 2n, for ten hidden tests.
PROBLEM_TESTS = [Case(stdin=f"{n}\n".encode(), expected_output=f"{2 * n}\n".encode(), hidden=True)
                 for n in range(1, 11)]  # fmt: skip
PROBLEM_SOURCES = {
    54: b"#include <iostream>\n"
    b"int main() { long n; std::cin >> n; std::cout << 2 * n << '\\n'; }\n",
    71: b"print(2 * int(input()))\n",
}


class CountedConnection(Connection):
    """Counts round trips: every request, a pipeline's included, is one send."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountedConnection.sends += 1
        await super().send_packed_command(command, check_health)


def bare_ms(argv: list[str], execs: int) -> float:
    times = []
    for _ in range(execs):
        started = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, {})
        os.waitpid(pid, 0)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bare_limit_per_s(cores: int, execs: int) -> float:
    """Submissions/s if judging cost nothing but the bare Python run, one per core."""
    return cores / (bare_ms(PYTHON, execs) / 1000)


def boxed_ms(box: Box, argv: list[str], execs: int) -> float:
    times = []
    for _ in range(execs):
        started = time.perf_counter()
        result = box.run(argv, stdin=b"", limits=LIMITS)
        times.append((time.perf_counter() - started) * 1000)
        assert result.succeeded, result
    return statistics.median(times)


def per_run(sandbox: Sandbox, *, runs: int, execs: int) -> dict[str, dict[str, float]]:
    with sandbox.box(family="c") as box:
        box.write_file("main.c", b"int main(void) { return 0; }\n")
        compiled = box.run(
            ["/usr/bin/gcc", "-O2", "-o", "a.out", "main.c"], stdin=b"", limits=COMPILE,
            writable=True,
        )  # fmt: skip
        assert compiled.succeeded, compiled.stderr
        with tempfile.TemporaryDirectory() as scratch:
            binary = Path(scratch) / "true"
            source = b"int main(void) { return 0; }\n"
            subprocess.run(
                ["gcc", "-O2", "-x", "c", "-o", str(binary), "-"], input=source, check=True
            )
            bare_c = [bare_ms([str(binary)], execs) for _ in range(runs)]
        boxed_c = [boxed_ms(box, ["./a.out"], execs) for _ in range(runs)]
    with sandbox.box(family="python") as box:
        bare_py = [bare_ms(PYTHON, execs) for _ in range(runs)]
        boxed_py = [boxed_ms(box, PYTHON, execs) for _ in range(runs)]
    median = statistics.median
    return {
        "c": {"bare_ms": median(bare_c), "sandbox_ms": median(boxed_c)},
        "python": {"bare_ms": median(bare_py), "sandbox_ms": median(boxed_py)},
    }


def judged_per_s(sandbox: Sandbox, submissions: int, concurrency: int) -> float:
    """The bench's submission judged `submissions` times by `concurrency` threads."""
    job = Job(
        language=LANGUAGES[71], source=b"print(input())", compiler_options=None,
        command_line_arguments=None, limits=LIMITS, compile_limits=COMPILE,
        redirect_stderr_to_stdout=False, tests=[Case(stdin=b"42", expected_output=b"42")],
        per_test_results=False,
    )  # fmt: skip
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        started = time.perf_counter()
        verdicts = list(executor.map(lambda _: judge(sandbox, job), range(submissions)))
        elapsed = time.perf_counter() - started
    assert all(verdict.status is Status.ACCEPTED for verdict in verdicts)
    return submissions / elapsed


def problem_job(language_id: int, tests: list[Case]) -> Job:
    return Job(
        language=LANGUAGES[language_id], source=PROBLEM_SOURCES[language_id],
        compiler_options=None, command_line_arguments=None, limits=LIMITS, compile_limits=COMPILE,
        redirect_stderr_to_stdout=False, tests=tests, per_test_results=True,
    )  # fmt: skip


def problem_judged(sandbox: Sandbox, language_id: int, submissions: int, concurrency: int) -> float:
    """Submissions/s of the problem judged by `judge()` from `concurrency` threads."""
    job = problem_job(language_id, PROBLEM_TESTS)
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        started = time.perf_counter()
        verdicts = list(executor.map(lambda _: judge(sandbox, job), range(submissions)))
        elapsed = time.perf_counter() - started
    assert all(verdict.status is Status.ACCEPTED for verdict in verdicts), verdicts[0]
    return submissions / elapsed


def problem_bare(language_id: int, submissions: int, concurrency: int) -> float:
    """The same work without a sandbox: compile with the same command, run each test."""

    def one(_: int) -> None:
        with tempfile.TemporaryDirectory() as scratch:
            _bare_compile(language_id, Path(scratch))
            for test in PROBLEM_TESTS:
                _bare_test(language_id, Path(scratch), test)

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        started = time.perf_counter()
        list(executor.map(one, range(submissions)))
        elapsed = time.perf_counter() - started
    return submissions / elapsed


def _bare_compile(language_id: int, folder: Path) -> None:
    language = LANGUAGES[language_id]
    (folder / language.source_file).write_bytes(PROBLEM_SOURCES[language_id])
    if language.compile_cmd is not None:
        argv = [part for part in language.compile_cmd if part != OPTIONS]
        subprocess.run(argv, cwd=folder, check=True, capture_output=True)


def _bare_test(language_id: int, folder: Path, test: Case) -> None:
    ran = subprocess.run(
        LANGUAGES[language_id].run_cmd, cwd=folder, input=test.stdin, capture_output=True
    )
    assert ran.stdout.strip() == (test.expected_output or b"").strip(), ran


def problem_test_ms(sandbox: Sandbox, language_id: int, rounds: int) -> dict[str, float]:
    """Milliseconds per test once compiled, one thread, sandboxed (`Box.run` and the output
    compared, as judging runs a test) and bare: medians over `rounds` of the 10 tests."""
    language = LANGUAGES[language_id]
    boxed, bare = [], []
    with sandbox.box(family=language.family) as box:
        box.write_file(language.source_file, PROBLEM_SOURCES[language_id])
        if language.compile_cmd is not None:
            argv = [part for part in language.compile_cmd if part != OPTIONS]
            assert box.run(argv, stdin=b"", limits=COMPILE, writable=True).succeeded
        for _ in range(rounds):
            started = time.perf_counter()
            for test in PROBLEM_TESTS:
                result = box.run(list(language.run_cmd), stdin=test.stdin, limits=LIMITS)
                status = run_status(result, limits=LIMITS, expected=test.expected_output)
                assert status is Status.ACCEPTED, result
            boxed.append((time.perf_counter() - started) * 1000 / len(PROBLEM_TESTS))
    with tempfile.TemporaryDirectory() as scratch:
        _bare_compile(language_id, Path(scratch))
        for _ in range(rounds):
            started = time.perf_counter()
            for test in PROBLEM_TESTS:
                _bare_test(language_id, Path(scratch), test)
            bare.append((time.perf_counter() - started) * 1000 / len(PROBLEM_TESTS))
    median = statistics.median
    return {"sandbox_ms_per_test": median(boxed), "bare_ms_per_test": median(bare)}


@dataclass(frozen=True, slots=True)
class EndToEnd:
    per_s: float  # submissions judged per second
    loop_cpu_ms: float  # CPU of the event-loop thread (the worker's own work) per submission
    redis_cpu_ms: float  # CPU of the Redis server per submission
    postgres_cpu_ms: float  # CPU of PostgreSQL and its backends per submission
    redis_round_trips: float  # per submission, the bench's own polling excluded
    profile: str | None  # pyinstrument's text profile of the event loop, if asked for


async def end_to_end(
    settings: WorkerSettings,
    sandbox: Sandbox,
    submissions: int,
    *,
    servers: dict[str, int],
    profile: bool = False,
) -> EndToEnd:
    """One worker with concurrency = cores judges `submissions`."""
    redis = Redis.from_url(settings.redis_url, connection_class=CountedConnection)
    engine = create_engine(settings, pool_size=1)
    pg = await record.connect(settings, concurrency=settings.concurrency)
    await redis.flushall()
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE submissions"))
    await queue.ensure_group(redis, settings.pool)
    tokens = [str(uuid.uuid4()) for _ in range(submissions)]
    async with sessionmaker(engine)() as session, session.begin():
        session.add_all(_submission(token) for token in tokens)
    for token in tokens:
        await queue.enqueue(redis, pool=settings.pool, token=token)
    worker = Worker(settings=settings, sandbox=sandbox, redis=redis, pg=pg, worker_id="bench")
    profiler = Profiler(async_mode="disabled") if profile else None
    if profiler is not None:
        profiler.start()
    started, cpu_started = time.perf_counter(), time.thread_time()
    servers_started = {name: localservices.tree_cpu_s(pid) for name, pid in servers.items()}
    sends_before = CountedConnection.sends
    running = asyncio.create_task(worker.run())
    await asyncio.to_thread(_wait_until_drained, settings)
    elapsed, cpu_s = time.perf_counter() - started, time.thread_time() - cpu_started
    servers_ms = {
        name: 1000 * (localservices.tree_cpu_s(pid) - servers_started[name]) / submissions
        for name, pid in servers.items()
    }
    round_trips = CountedConnection.sends - sends_before
    if profiler is not None:
        profiler.stop()
    worker.stop()
    await running
    done = select(func.count()).select_from(Submission).where(Submission.status_id == 3)
    async with engine.connect() as connection:
        accepted = (await connection.execute(done)).scalar_one()
    assert accepted == submissions, f"{accepted} of {submissions} accepted"
    await redis.aclose()
    await engine.dispose()
    await pg.close()
    return EndToEnd(
        per_s=submissions / elapsed,
        loop_cpu_ms=1000 * cpu_s / submissions,
        redis_cpu_ms=servers_ms["redis"],
        postgres_cpu_ms=servers_ms["postgres"],
        redis_round_trips=round_trips / submissions,
        profile=None if profiler is None else profiler.output_text(show_all=False),
    )


def _wait_until_drained(settings: WorkerSettings) -> None:
    """An entry leaves the stream when it is acked, after its verdict is committed and
    published. Polled from a thread with a client of its own, so that neither the polls' CPU
    nor their round trips count as the worker's. (The stream rather than PostgreSQL: it keeps
    the bench's own load off the cores.)"""
    with SyncRedis.from_url(settings.redis_url) as client:
        while client.xlen(protocol.queue_stream(settings.pool)):
            time.sleep(0.02)


def _submission(token: str) -> Submission:
    return Submission(
        token=token, owner="bench", source_code=b"print(input())", language_id=71,
        stdin=b"42", expected_output=b"42", cpu_time_limit=Decimal(2),
        cpu_extra_time=Decimal("0.5"), wall_time_limit=Decimal(5), memory_limit=128_000,
        stack_limit=64_000, max_processes_and_or_threads=60,
        enable_per_process_and_thread_time_limit=False,
        enable_per_process_and_thread_memory_limit=False, max_file_size=1024,
        redirect_stderr_to_stdout=False, enable_network=False, number_of_runs=1,
    )  # fmt: skip


def executor_run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """`fn` in a thread, as the worker runs boxes."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(fn, *args, **kwargs).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--execs", type=int, default=100)
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=0, help="default: one per core")
    parser.add_argument("--problem-submissions", type=int, default=20)
    parser.add_argument(
        "--profile",
        type=Path,
        help="one more end-to-end run, its event loop's profile to this file",
    )
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    work = Path(tempfile.mkdtemp(prefix="kubejudge-bench-"))
    work.chmod(0o755)
    sandbox = Sandbox(SandboxConfig(root=work / "sandbox"))
    costs = executor_run(per_run, sandbox, runs=args.runs, execs=args.execs)
    concurrency = args.concurrency or cores
    judge_only_shares = []
    for _ in range(args.runs):
        limit = bare_limit_per_s(cores, args.execs)
        judge_only_shares.append(judged_per_s(sandbox, args.submissions, concurrency) / limit)
    n = args.problem_submissions
    problem = {
        LANGUAGES[language_id].family: {
            "sandbox_per_s": statistics.median(
                problem_judged(sandbox, language_id, n, concurrency) for _ in range(args.runs)
            ),
            "bare_per_s": statistics.median(
                problem_bare(language_id, n, concurrency) for _ in range(args.runs)
            ),
            **executor_run(problem_test_ms, sandbox, language_id, rounds=args.execs // 10 or 1),
        }
        for language_id in PROBLEM_SOURCES
    }
    with localservices.running(
        localservices.start_redis(work / "redis"), localservices.start_postgres(work / "pg")
    ) as (redis_server, postgres_server):
        shared = Settings(redis_url=redis_server.url, database_url=postgres_server.url)
        migrate(shared)
        settings = WorkerSettings(
            redis_url=shared.redis_url, database_url=shared.database_url,
            concurrency=concurrency, metrics_port=0,
        )  # fmt: skip
        servers = {"redis": redis_server.process.pid, "postgres": postgres_server.process.pid}
        results, limits = [], []
        for _ in range(args.runs):
            limits.append(bare_limit_per_s(cores, args.execs))
            results.append(
                uvloop.run(end_to_end(settings, sandbox, args.submissions, servers=servers))
            )
        if args.profile is not None:  # one more run, not counted: the profiler slows it
            profiled = uvloop.run(
                end_to_end(settings, sandbox, args.submissions, servers=servers, profile=True)
            )
            args.profile.write_text(profiled.profile or "")
    sandbox.close()
    rates = [result.per_s for result in results]
    rate = statistics.median(rates)
    share = statistics.median(r / limit for r, limit in zip(rates, limits, strict=True))
    limit = statistics.median(limits)
    judge_only_share = statistics.median(judge_only_shares)
    loop_cpu_ms = statistics.median(result.loop_cpu_ms for result in results)
    redis_cpu_ms = statistics.median(result.redis_cpu_ms for result in results)
    postgres_cpu_ms = statistics.median(result.postgres_cpu_ms for result in results)
    round_trips = statistics.median(result.redis_round_trips for result in results)
    print(f"{'program':<10}{'bare ms':>10}{'sandbox ms':>12}{'overhead ms':>13}")
    for name, cost in costs.items():
        overhead = cost["sandbox_ms"] - cost["bare_ms"]
        print(f"{name:<10}{cost['bare_ms']:>10.2f}{cost['sandbox_ms']:>12.2f}{overhead:>13.2f}")
    print(
        f"end to end (Python, {cores} cores, concurrency {settings.concurrency}): "
        f"{rate:.1f} submissions/s, "
        f"{rate / cores:.1f}/s per core, {100 * share:.0f}% of the bare-exec limit "
        f"({limit:.0f}/s); runs: {', '.join(f'{r:.1f}' for r in rates)}"
    )
    print(
        f"worker per submission: {loop_cpu_ms:.2f} ms of event-loop CPU, "
        f"{round_trips:.2f} Redis round trips; servers: {redis_cpu_ms:.2f} ms of Redis CPU, "
        f"{postgres_cpu_ms:.2f} ms of PostgreSQL CPU"
    )
    print(
        f"sandbox alone (judge() from {concurrency} threads): "
        f"{100 * judge_only_share:.0f}% of the bare-exec limit"
    )
    print(f"problem, {len(PROBLEM_TESTS)} hidden tests, {concurrency} threads:"
          f"{'judged/s':>10}{'ms/test':>9}{'bare/s':>8}{'bare ms/test':>13}")  # fmt: skip
    for family, rates in problem.items():
        print(
            f"{family:<42}{rates['sandbox_per_s']:>10.1f}{rates['sandbox_ms_per_test']:>9.2f}"
            f"{rates['bare_per_s']:>8.1f}{rates['bare_ms_per_test']:>13.2f}"
        )
    print("(judged/s: compile and 10 tests from each thread; ms/test: one test once compiled)")
    summary = {
        "cores": cores,
        "concurrency": settings.concurrency,
        "runs": args.runs,
        "per_run_ms": costs,
        "overhead_ms": {n: c["sandbox_ms"] - c["bare_ms"] for n, c in costs.items()},
        "end_to_end_per_s": rate,
        "end_to_end_per_s_per_core": rate / cores,
        "bare_exec_limit_per_s": limit,
        "share_of_bare_limit": share,
        "worker_loop_cpu_ms_per_submission": loop_cpu_ms,
        "redis_round_trips_per_submission": round_trips,
        "redis_cpu_ms_per_submission": redis_cpu_ms,
        "postgres_cpu_ms_per_submission": postgres_cpu_ms,
        "sandbox_alone_share_of_bare_limit": judge_only_share,
        "problem_10_tests": problem,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
