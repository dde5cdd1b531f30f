"""rlimit mode, for hosts without user namespaces: refused unless enabled; once enabled it
judges, ends runaway programs, cuts off floods, and drops the program's uid."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox, SandboxConfig, SandboxError
from sandbox_support import RUN_LIMITS, fresh_sandbox, job

from kubejudge.statuses import Status

LIMITS = replace(RUN_LIMITS, wall_time_s=2.0)

if os.geteuid() != 0:
    pytest.skip("rlimit mode mounts work dirs: needs root", allow_module_level=True)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-rlimit-", mode="rlimit", allow_rlimit_mode=True) as box:
        yield box


def test_refused_unless_enabled(sandbox: Sandbox) -> None:
    with pytest.raises(SandboxError, match="does not isolate"):
        Sandbox(SandboxConfig(root=sandbox.config.root, mode="rlimit"))


def test_a_compiled_program_is_judged_as_the_unprivileged_uid(sandbox: Sandbox) -> None:
    source = (
        "#include <stdio.h>\n#include <unistd.h>\n"
        'int main(void) { int n; scanf("%d", &n); printf("%d %d\\n", n * 2, getuid()); }\n'
    )
    verdict = judge(sandbox, job(50, source, stdin=b"21", expected=b"42 60000", limits=LIMITS))
    assert verdict.status is Status.ACCEPTED, verdict


def test_runaway_programs_are_ended(sandbox: Sandbox) -> None:
    loop = judge(sandbox, job(71, "while True:\n    pass\n", limits=LIMITS))
    assert loop.status is Status.TIME_LIMIT_EXCEEDED
    assert loop.time is not None and Decimal("1.5") <= loop.time < Decimal("1.6")
    flood = judge(sandbox, job(71, "while True:\n    print('x' * 1000)\n", limits=LIMITS))
    assert flood.status is Status.RUNTIME_ERROR_SIGXFSZ
    assert (flood.stdout or b"").endswith(b"[output truncated]\n")
    healthy = judge(sandbox, job(71, "print(input())", stdin=b"hi", expected=b"hi", limits=LIMITS))
    assert healthy.status is Status.ACCEPTED
