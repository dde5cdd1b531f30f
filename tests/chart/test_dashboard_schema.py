"""The chart's dashboard JSON type-checks against Grafana's own published dashboard types
(`@grafana/schema`, the types Grafana's front end is built with), so a misspelled field, a
wrong type or a missing required value fails here rather than in a user's Grafana.

The pinned packages (grafana/package.json and its lock) are installed from npm once into
~/.cache/kubejudge (by the lock's hash) and `tsc --noEmit` checks the dashboard as a typed
object literal, where TypeScript refuses properties the type does not have.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.chart.paths import CHART

PACKAGES = Path(__file__).parent / "grafana"
CACHE = Path(os.environ.get("KUBEJUDGE_CACHE", Path.home() / ".cache" / "kubejudge"))


@pytest.fixture(scope="module")
def typescript() -> Path:
    """A folder with @grafana/schema and tsc installed from the lock file."""
    lock = (PACKAGES / "package-lock.json").read_bytes()
    home = CACHE / "grafana-schema" / hashlib.sha256(lock).hexdigest()[:16]
    if not (home / "node_modules" / ".bin" / "tsc").exists():
        home.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(PACKAGES / name, home / name)
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=home,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    return home


def tsc(home: Path, dashboard: dict[str, Any], workdir: Path) -> subprocess.CompletedProcess[str]:
    (workdir / "node_modules").symlink_to(home / "node_modules")
    shutil.copy(PACKAGES / "tsconfig.json", workdir / "tsconfig.json")
    (workdir / "check.ts").write_text(
        'import type { Dashboard } from "@grafana/schema";\n\n'
        f"export const dashboard: Dashboard = {json.dumps(dashboard, indent=1)};\n"
    )
    return subprocess.run(
        [str(home / "node_modules" / ".bin" / "tsc"), "-p", "."], cwd=workdir,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def dashboards() -> list[Path]:
    return sorted((CHART / "dashboards").glob("*.json"))


@pytest.mark.parametrize("path", dashboards(), ids=lambda p: p.name)
def test_the_dashboard_type_checks_against_grafanas_schema(
    path: Path, typescript: Path, tmp_path: Path
) -> None:
    result = tsc(typescript, json.loads(path.read_text()), tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_check_refuses_a_field_grafana_does_not_know(typescript: Path, tmp_path: Path) -> None:
    (path,) = dashboards()[:1]
    broken = json.loads(path.read_text())
    broken["panels"][0]["gridPosition"] = broken["panels"][0].pop("gridPos")
    result = tsc(typescript, broken, tmp_path)
    assert result.returncode != 0 and "gridPosition" in result.stdout, result.stdout
