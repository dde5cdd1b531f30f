"""Every Judge0 verdict, in every language, from real programs in the real sandbox.

Each language's program is compiled once (a module-scoped box) and then told on stdin how
to misbehave; the verdict comes from `run_status`, the same function the worker uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from kubejudge_worker.judge import Case, Job, judge
from kubejudge_worker.sandbox import Box, Sandbox
from kubejudge_worker.verdicts import run_status
from sandbox_programs import BROKEN, PROGRAMS, SIGNALS
from sandbox_support import COMPILE_LIMITS, RUN_LIMITS, compile_command, job

from kubejudge.languages import LANGUAGES, Language
from kubejudge.statuses import Status

LANGUAGE_IDS = {
    "c": 50,
    "cpp": 54,
    "python": 71,
    "javascript": 63,
    "java": 62,
    "go": 60,
    "rust": 73,
}
EXPECTED = {
    "ok": Status.ACCEPTED,
    "wa": Status.WRONG_ANSWER,
    "loop": Status.TIME_LIMIT_EXCEEDED,
    "nzec": Status.RUNTIME_ERROR_NZEC,
    "flood": Status.RUNTIME_ERROR_SIGXFSZ,
    "segv": Status.RUNTIME_ERROR_SIGSEGV,
    "fpe": Status.RUNTIME_ERROR_SIGFPE,
    "abrt": Status.RUNTIME_ERROR_SIGABRT,
    "other": Status.RUNTIME_ERROR_OTHER,
}
COMMON = ("ok", "wa", "loop", "nzec", "flood")


@pytest.fixture(scope="module", params=list(LANGUAGE_IDS))
def compiled(request: pytest.FixtureRequest, sandbox: Sandbox) -> Iterator[tuple[Language, Box]]:
    language = LANGUAGES[LANGUAGE_IDS[request.param]]
    with sandbox.box(family=language.family) as box:
        box.write_file(language.source_file, PROGRAMS[language.family].encode())
        if language.compile_cmd is not None:
            result = box.run(
                compile_command(language),
                stdin=b"",
                limits=COMPILE_LIMITS,
                writable=True,
                merge_stderr=True,
            )
            assert result.succeeded, result.stdout.decode(errors="replace")
        yield language, box


def test_every_verdict(compiled: tuple[Language, Box]) -> None:
    language, box = compiled
    behaviours = COMMON + SIGNALS[language.family]
    got = {}
    for behaviour in behaviours:
        result = box.run(list(language.run_cmd), stdin=f"{behaviour}\n".encode(), limits=RUN_LIMITS)
        got[behaviour] = run_status(result, limits=RUN_LIMITS, expected=b"42")
    assert got == {behaviour: EXPECTED[behaviour] for behaviour in behaviours}


def _job(language: Language, source: str, **overrides: object) -> Job:
    values: dict = dict(
        language=language,
        source=source.encode(),
        compiler_options=None,
        command_line_arguments=None,
        limits=RUN_LIMITS,
        compile_limits=COMPILE_LIMITS,
        redirect_stderr_to_stdout=False,
        tests=[Case(stdin=b"ok\n", expected_output=b"42\n")],
        per_test_results=False,
    )
    values.update(overrides)
    return Job(**values)


@pytest.mark.parametrize("family", sorted(BROKEN))
def test_compilation_error(sandbox: Sandbox, family: str) -> None:
    verdict = judge(sandbox, _job(LANGUAGES[LANGUAGE_IDS[family]], BROKEN[family]))
    assert verdict.status is Status.COMPILATION_ERROR
    assert b"missing" in (verdict.compile_output or b"")


def test_exec_format_error(sandbox: Sandbox) -> None:
    # `-c` makes gcc write a non-executable object file as a.out; Judge0 reports a refused
    # execve (format error, missing file or permission denied) as Exec Format Error.
    job = _job(LANGUAGES[50], PROGRAMS["c"], compiler_options="-c")
    verdict = judge(sandbox, job)
    assert verdict.status is Status.EXEC_FORMAT_ERROR
    assert verdict.message == "execve: Permission denied"


def test_accepted_with_trailing_whitespace_and_compiler_options(sandbox: Sandbox) -> None:
    source = '#include <stdio.h>\nint main(void){printf("%d  \\n\\n\\n", VALUE);return 0;}\n'
    job = _job(LANGUAGES[50], source, compiler_options="-DVALUE=42 -Wall")
    verdict = judge(sandbox, job)
    assert verdict.status is Status.ACCEPTED
    assert verdict.stdout == b"42  \n\n\n"


def test_command_line_arguments_are_argv_words_not_shell(sandbox: Sandbox) -> None:
    source = "import sys\nprint(sys.argv[1:])\n"
    job = _job(
        LANGUAGES[71],
        source,
        command_line_arguments="'a b' $HOME ; `id` | c",
        tests=[Case(stdin=b"", expected_output=None)],
    )
    verdict = judge(sandbox, job)
    assert verdict.status is Status.ACCEPTED
    assert verdict.stdout == b"['a b', '$HOME', ';', '`id`', '|', 'c']\n"


def test_number_of_runs_runs_each_test_that_often(sandbox: Sandbox) -> None:
    # Runs share nothing (/box is read-only, /tmp fresh per run): time is the mean of the runs.
    source = (
        "import time\n"
        "end = time.process_time() + 0.2\n"
        "while time.process_time() < end: pass\n"
        "print(42)\n"
    )
    single = judge(sandbox, _job(LANGUAGES[71], source))
    before = sandbox.runs_started
    triple = judge(sandbox, _job(LANGUAGES[71], source, number_of_runs=3))
    assert sandbox.runs_started - before == 3
    assert single.status is triple.status is Status.ACCEPTED
    assert single.time is not None and triple.time is not None
    assert abs(triple.time - single.time) < Decimal("0.1")  # a mean, not a sum


def test_memory_is_the_runs_own_not_what_the_compile_left(sandbox: Sandbox) -> None:
    # The compile leaves a 24 MB binary in the work dir (a tmpfs, charged to the box's memory
    # cgroup) and page cache; the run is measured over what the box held when it started, as
    # in a fresh cgroup, so only what the program itself touches counts.
    source = (
        "#include <stdio.h>\n"
        "__attribute__((used)) static const char ballast[24 << 20] = {1};\n"
        'int main(void) { puts("hi"); return 0; }\n'
    )
    verdict = judge(sandbox, job(50, source, expected=b"hi"))
    assert verdict.status is Status.ACCEPTED
    assert verdict.memory is not None and 0 < verdict.memory < 8_000
