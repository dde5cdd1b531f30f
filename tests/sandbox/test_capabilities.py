"""The sandbox works with exactly the capabilities the operator grants worker pods, and each
one of them is needed: a run with one left out fails.

The child process is root with its bounding set cut down (`setpriv --bounding-set`) and
no_new_privs set, like the worker in its pod: container root, `allowPrivilegeEscalation: false`,
`capabilities: {drop: [ALL], add: WORKER_CAPABILITIES}`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubejudge_operator.resources.workers import WORKER_CAPABILITIES

if os.geteuid() != 0:
    pytest.skip("needs root to cut its own capabilities down", allow_module_level=True)

# One box: a run that passes (setpriv), then one whose output floods past the cap, then a
# sandbox close, which kills the box servers (another uid: CAP_KILL).
SCRIPT = """
import sys
from pathlib import Path
from kubejudge_worker.sandbox import Limits, Sandbox, SandboxConfig

limits = Limits(cpu_time_s=1, cpu_extra_time_s=0.5, wall_time_s=3, memory_kb=128_000,
                stack_kb=64_000, max_processes=60, max_file_size_kb=1024,
                output_limit_bytes=64 * 1024)
sandbox = Sandbox(SandboxConfig(root=Path(sys.argv[1])))
try:
    with sandbox.box(family="python") as box:
        box.write_file("main.py", b"print(input())")
        echo = box.run(["/usr/bin/python3", "main.py"], stdin=b"caps", limits=limits)
        assert echo.stdout == b"caps\\n", echo
        flood = box.run(["/usr/bin/yes"], stdin=b"", limits=limits)
        assert flood.output_limit_exceeded, flood
finally:
    sandbox.close()
print("ok")
"""


@pytest.fixture
def root() -> Iterator[Path]:
    """A sandbox root the box user can traverse to (pytest's tmp_path is inside a 0700 dir)."""
    path = Path(tempfile.mkdtemp(prefix="kubejudge-caps-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def run_with(capabilities: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    bounding = ",".join(["-all", *(f"+{cap.lower()}" for cap in capabilities)])
    return subprocess.run(
        [
            *(shutil.which("setpriv") or "setpriv", f"--bounding-set={bounding}"),
            *("--inh-caps=-all", "--no-new-privs", "--", sys.executable, "-c", SCRIPT, str(root)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_granted_capabilities_are_enough(root: Path) -> None:
    done = run_with(list(WORKER_CAPABILITIES), root)
    assert done.stdout == "ok\n", done.stderr[-2000:]


@pytest.mark.parametrize("missing", WORKER_CAPABILITIES)
def test_each_granted_capability_is_needed(missing: str, root: Path) -> None:
    done = run_with([cap for cap in WORKER_CAPABILITIES if cap != missing], root)
    assert done.returncode != 0 and done.stdout == "", f"{missing} was not needed"
