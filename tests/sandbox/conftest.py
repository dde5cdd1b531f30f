"""Sandbox-tier fixtures: a real bubblewrap sandbox (skipped where bwrap is missing)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import fresh_sandbox

if shutil.which("bwrap") is None:
    pytest.skip("bubblewrap (bwrap) is not installed", allow_module_level=True)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-sandbox-tests-") as box:
        yield box
