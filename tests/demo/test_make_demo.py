"""`make demo` as a newcomer runs it: as root, from a checkout in a folder no other user may
enter (root's home, a `mktemp -d` folder), with no Redis or PostgreSQL of its own. It must come
up, seed the classic problems, print the burst to try, and stop cleanly on Ctrl-C.

The checkout is a copy of this one; the demo uses this checkout's `.venv` (`make -o` skips the
install, which `make install` has done) so the test does not install everything again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubejudge_dev import localservices

REPO = Path(__file__).resolve().parents[2]
SKIPPED = shutil.ignore_patterns(
    ".venv", ".git", ".kubejudge", ".cluster", ".controlplane", "__pycache__", "*.egg-info"
)

if os.geteuid() != 0:
    pytest.skip("the case under test is root in a private folder", allow_module_level=True)


@pytest.fixture
def private_checkout() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="kubejudge-demo-"))  # mode 0700
    assert folder.stat().st_mode & 0o777 == 0o700
    checkout = folder / "kubejudge"
    shutil.copytree(REPO, checkout, ignore=SKIPPED)
    yield checkout
    shutil.rmtree(folder, ignore_errors=True)
    state = (checkout / ".kubejudge" / "postgres").resolve()
    digest = hashlib.sha256(str(state).encode()).hexdigest()[:16]
    shutil.rmtree(localservices.POSTGRES_FALLBACK_ROOT / digest, ignore_errors=True)


def test_make_demo_runs_as_root_from_a_0700_folder(private_checkout: Path, tmp_path: Path) -> None:
    venv = Path(sys.prefix)
    api_port, gateway_port = localservices.free_port(), localservices.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBEJUDGE_")}
    output = tmp_path / "demo.log"
    with output.open("wb") as log:
        demo = subprocess.Popen(
            ["make", "demo", f"VENV={venv}", "-o", f"{venv}/.installed",
             f"DEMO_ARGS=--api-port {api_port} --gateway-port {gateway_port}"],
            cwd=private_checkout, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{api_port}"
        _wait_for(lambda: _ready(f"{api}/readyz"), demo, output)
        problems = httpx.get(f"{api}/problems", timeout=5).json()
        assert len(problems) >= 5, problems
        banner = output.read_text()
        assert "seeded" in banner and "loadtest --burst" in banner, banner
        assert httpx.get(f"http://127.0.0.1:{gateway_port}/readyz", timeout=5).status_code == 200
    finally:
        os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in the terminal
        demo.wait(timeout=60)  # make itself dies of the SIGINT; what matters is what it ran
    log = output.read_text()
    assert "Traceback" not in log and "exited with" not in log, log[-3000:]
    assert not _ready(f"{api}/readyz")


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _wait_for(check: object, process: subprocess.Popen[bytes], output: Path) -> None:
    assert callable(check)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if check():
            return
        if process.poll() is not None:
            raise AssertionError(f"make demo exited {process.returncode}:\n{output.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"make demo did not come up:\n{output.read_text()[-3000:]}")
