"""The chart's alerts, evaluated by Prometheus's own rule engine (promtool).

The PrometheusRule is rendered as shipped (release `kj`, namespace `judges`) and its groups are
written out as a plain rules file: `promtool check rules` accepts it, and `promtool test rules`
runs alerts/kubejudge.test.yaml against it, where every alert fires on the series that should
fire it, only after its `for`, with its labels and annotations, and stays silent when healthy.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.paths import Render

ALERT_TESTS = Path(__file__).parent / "alerts" / "kubejudge.test.yaml"


def rendered_groups(render: Render) -> list[dict[str, Any]]:
    (rule,) = [
        o
        for o in render(namespace="judges", **{"prometheusRule.enabled": "true"})
        if o["kind"] == "PrometheusRule"
    ]
    return rule["spec"]["groups"]


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Debian's prometheus package (scripts/install-system-deps.sh installs it).
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture
def rules_dir(render: Render, tmp_path: Path) -> Path:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": rendered_groups(render)}))
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    return tmp_path


def test_promtool_accepts_the_rendered_rules(rules_dir: Path) -> None:
    result = promtool("check", "rules", "rules.yaml", cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_behaves_as_its_unit_tests_say(rules_dir: Path) -> None:
    result = promtool("test", "rules", ALERT_TESTS.name, cwd=rules_dir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_test_that_fires_it_and_one_that_does_not(render: Render) -> None:
    alerts = {r["alert"] for group in rendered_groups(render) for r in group["rules"]}
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(ALERT_TESTS.read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    assert alerts - fires == set(), "alerts no test fires"
    assert alerts - silent == set(), "alerts no test keeps silent"
    assert fires | silent <= alerts, "tests of alerts the chart does not have"
