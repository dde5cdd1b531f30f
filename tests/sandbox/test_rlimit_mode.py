"""rlimit mode, for hosts without user namespaces: refused unless enabled; once enabled it
judges, ends runaway programs, cuts off floods, and drops the program's uid."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from kubejudge_worker.judge import Case, Job, judge
from kubejudge_worker.sandbox import Sandbox, SandboxConfig, SandboxError
from sandbox_support import COMPILE_LIMITS, RUN_LIMITS

from kubejudge.languages import LANGUAGES
from kubejudge.statuses import Status

if os.geteuid() != 0:
    pytest.skip("rlimit mode mounts work dirs: needs root", allow_module_level=True)


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kubejudge-rlimit-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def sandbox(root: Path) -> Iterator[Sandbox]:
    box = Sandbox(SandboxConfig(root=root, mode="rlimit", allow_rlimit_mode=True))
    yield box
    box.close()


def test_refused_unless_enabled(root: Path) -> None:
    with pytest.raises(SandboxError, match="does not isolate"):
        Sandbox(SandboxConfig(root=root, mode="rlimit"))


def job(language_id: int, source: str, *, stdin: bytes = b"", expected: bytes | None) -> Job:
    return Job(
        language=LANGUAGES[language_id],
        source=source.encode(),
        compiler_options=None,
        command_line_arguments=None,
        limits=replace(RUN_LIMITS, wall_time_s=2.0),
        compile_limits=COMPILE_LIMITS,
        redirect_stderr_to_stdout=False,
        tests=[Case(stdin=stdin, expected_output=expected)],
        per_test_results=False,
    )


def test_a_compiled_program_is_judged_as_the_unprivileged_uid(sandbox: Sandbox) -> None:
    source = (
        "#include <stdio.h>\n#include <unistd.h>\n"
        'int main(void) { int n; scanf("%d", &n); printf("%d %d\\n", n * 2, getuid()); }\n'
    )
    verdict = judge(sandbox, job(50, source, stdin=b"21", expected=b"42 65534"))
    assert verdict.status is Status.ACCEPTED, verdict


def test_runaway_programs_are_ended(sandbox: Sandbox) -> None:
    loop = judge(sandbox, job(71, "while True:\n    pass\n", expected=None))
    assert loop.status is Status.TIME_LIMIT_EXCEEDED
    assert loop.time is not None and Decimal("1.5") <= loop.time < Decimal("1.6")
    flood = judge(sandbox, job(71, "while True:\n    print('x' * 1000)\n", expected=None))
    assert flood.status is Status.RUNTIME_ERROR_SIGXFSZ
    assert (flood.stdout or b"").endswith(b"[output truncated]\n")
    healthy = judge(sandbox, job(71, "print(input())", stdin=b"hi", expected=b"hi"))
    assert healthy.status is Status.ACCEPTED
