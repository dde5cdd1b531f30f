"""A security scan (checkov) of the rendered manifests: nothing fails, and every check the chart
skips carries its reason in a `checkov.io/skipN` annotation next to the object."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# checkov pins dozens of libraries (some older than ours), so it lives in a venv of its own.
CHECKOV_VERSION = "3.3.30"


@pytest.fixture(scope="session")
def checkov() -> Path:
    cache = Path(os.environ.get("KUBEJUDGE_CACHE", Path.home() / ".cache" / "kubejudge"))
    venv = cache / f"checkov-{CHECKOV_VERSION}"
    binary = venv / "bin" / "checkov"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"checkov=={CHECKOV_VERSION}"],
            check=True,
            timeout=600,
        )
    return binary


def scan(checkov: Path, manifests: Path) -> dict[str, Any]:
    # --skip-download: no calls to the vendor's platform, only the bundled checks.
    result = subprocess.run(
        [
            *(str(checkov), "--file", str(manifests), "--framework", "kubernetes"),
            *("--skip-download", "--output", "json", "--compact"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report


def test_rendered_manifests_pass_the_scan(
    checkov: Path, rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    manifests = tmp_path / "manifests.yaml"
    # checkov does not know our CRDs' kinds; it scans the built-in ones.
    manifests.write_text(yaml.safe_dump_all(rendered))
    report = scan(checkov, manifests)
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert report["summary"]["passed"] > 50, "the scan checked almost nothing"
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason) > 20, f"{check['check_id']} {check['resource']}: skipped without reason"
