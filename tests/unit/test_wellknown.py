"""The ports written outside Python (the chart's values, the Dockerfile, the page) are the ones
kubejudge/wellknown.py gives every role."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from kubejudge import wellknown

ROOT = Path(__file__).resolve().parents[2]


def exposed_ports(dockerfile: str) -> dict[str, set[int]]:
    """Each build target's EXPOSEd ports, by the stage name it is built with (`--target`)."""
    ports: dict[str, set[int]] = {}
    stage = ""
    for line in dockerfile.splitlines():
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE):
            stage = match.group(1)
        elif match := re.match(r"EXPOSE\s+(.+)", line):
            ports.setdefault(stage, set()).update(int(port) for port in match.group(1).split())
    return ports


def test_each_image_exposes_its_roles_port() -> None:
    exposed = exposed_ports((ROOT / "images" / "Dockerfile").read_text())
    assert wellknown.API_PORT in exposed["api"]
    assert wellknown.GATEWAY_PORT in exposed["gateway"]
    assert wellknown.OPERATOR_METRICS_PORT in exposed["operator"]
    assert wellknown.WORKER_METRICS_PORT in exposed["worker"]


def test_the_charts_operator_serves_metrics_on_the_operators_port() -> None:
    values = yaml.safe_load((ROOT / "charts" / "kubejudge" / "values.yaml").read_text())
    assert values["operator"]["metricsPort"] == wellknown.OPERATOR_METRICS_PORT


def test_the_page_looks_for_the_gateway_on_its_port() -> None:
    page = (ROOT / "images" / "api" / "kubejudge_api" / "static" / "app.js").read_text()
    assert f"${{location.hostname}}:{wellknown.GATEWAY_PORT}/ws" in page
