"""Where the shipped artefacts live, and how the chart tests call helm."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "kubejudge"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
# The Kubernetes version the rendered objects are validated against: the control plane's.
KUBERNETES_VERSION = "1.36.0"

Render = Callable[..., list[dict[str, Any]]]


def run_helm(helm: str, *args: str) -> str:
    result = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout
