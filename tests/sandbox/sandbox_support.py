"""Limits and helpers shared by the sandbox tier's tests.

Judge0's defaults shrunk so the suite stays fast: a runaway program is stopped after about
a second.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubejudge_worker.judge import Case, Job
from kubejudge_worker.sandbox import Limits, Sandbox, SandboxConfig

from kubejudge.languages import LANGUAGES, OPTIONS, Language

RUN_LIMITS = Limits(
    cpu_time_s=1.0,
    cpu_extra_time_s=0.5,
    wall_time_s=3.0,
    memory_kb=128_000,
    stack_kb=64_000,
    max_processes=60,
    max_file_size_kb=1024,
    output_limit_bytes=1024 * 1024,
)
COMPILE_LIMITS = Limits(
    cpu_time_s=15.0,
    cpu_extra_time_s=0,
    wall_time_s=30.0,
    memory_kb=1_024_000,
    stack_kb=64_000,
    max_processes=128,
    max_file_size_kb=64 * 1024,
    output_limit_bytes=64 * 1024,
)


def compile_command(language: Language, options: list[str] | None = None) -> list[str]:
    assert language.compile_cmd is not None
    command: list[str] = []
    for part in language.compile_cmd:
        command += (options or []) if part == OPTIONS else [part]
    return command


def processes_with(marker: str) -> list[int]:
    """Pids of the processes whose command line holds `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def processes_of(uid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose real uid is `uid` on the host."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines()
                )
            except (OSError, ValueError):
                continue
            if status["Uid"].split()[0] == str(uid) and not status["State"].strip().startswith("Z"):
                found.append(int(entry.name))
    return found


def job(
    language_id: int,
    source: str,
    *,
    stdin: bytes = b"",
    expected: bytes | None = None,
    **overrides: Any,
) -> Job:
    """One test case of `source`, with the tier's limits; `overrides` replace any other field."""
    values: dict[str, Any] = {
        "language": LANGUAGES[language_id],
        "source": source.encode(),
        "compiler_options": None,
        "command_line_arguments": None,
        "limits": RUN_LIMITS,
        "compile_limits": COMPILE_LIMITS,
        "redirect_stderr_to_stdout": False,
        "tests": [Case(stdin=stdin, expected_output=expected)],
        "per_test_results": False,
    }
    return Job(**{**values, **overrides})


@contextmanager
def fresh_sandbox(prefix: str, **config: Any) -> Iterator[Sandbox]:
    """A sandbox of its own, under a root the box user can traverse to (pytest's tmp_path is
    inside a 0700 dir), closed and removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    sandbox = Sandbox(SandboxConfig(root=root, **config))
    try:
        yield sandbox
    finally:
        sandbox.close()
        shutil.rmtree(root, ignore_errors=True)
