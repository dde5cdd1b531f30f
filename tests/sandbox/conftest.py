"""Sandbox-tier fixtures: a real bubblewrap sandbox (skipped where bwrap is missing)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubejudge_worker.sandbox import Sandbox, SandboxConfig

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    root = Path(tempfile.mkdtemp(prefix="kubejudge-sandbox-tests-"))
    box = Sandbox(SandboxConfig(root=root))
    yield box
    box.close()
    shutil.rmtree(root, ignore_errors=True)
