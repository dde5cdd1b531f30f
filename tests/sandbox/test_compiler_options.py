"""The worker refuses compiler options outside the allow-list too (an entry that reached the
queue past the api): nothing of them runs, and the submission is a Compilation Error."""

from __future__ import annotations

import pytest
from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import job

from kubejudge.statuses import Status

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n'
HELLO_RUST = 'fn main() { println!("hi"); }\n'


@pytest.mark.parametrize(
    ("language_id", "source", "options"),
    [
        (50, HELLO_C, "-wrapper /bin/echo,WRAPPED"),  # gcc runs the wrapper with cc1's argv
        (50, HELLO_C, "-O2 -B/bin/ -v"),
        (73, HELLO_RUST, "-C linker=/bin/echo"),
    ],
)
def test_options_that_run_programs_do_not_run(
    sandbox: Sandbox, language_id: int, source: str, options: str
) -> None:
    verdict = judge(sandbox, job(language_id, source, expected=b"hi", compiler_options=options))
    assert verdict.status is Status.COMPILATION_ERROR, verdict
    assert (verdict.compile_output or b"").startswith(b"compiler_options: compiler option not")
