"""Browser-tier fixtures: the whole judge as real processes (api, worker, gateway) against the
test Redis and PostgreSQL, and a real headless Debian chromium driven by Selenium.

- ``stack`` (module): the three processes and the page's URL; the gateway can be restarted.
- ``browser`` (function): a fresh chromium with its own profile, quit after the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubejudge_dev import localservices
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from support.processes import spawn_role, stop, wait_ready

from kubejudge.settings import Settings

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

for _tool in (CHROMIUM, CHROMEDRIVER, shutil.which("bwrap")):
    if _tool is None or not Path(_tool).exists():
        pytest.skip(
            "needs chromium, chromedriver and bubblewrap (scripts/install-system-deps.sh)",
            allow_module_level=True,
        )


@dataclass
class Stack:
    page: str  # the demo page, pointed at this stack's gateway
    api: str
    gateway: str  # http:// base of the gateway, for its /metrics
    gateway_port: int
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]

    def stop_gateway(self) -> None:
        self.processes["gateway"].terminate()
        self.processes["gateway"].wait(timeout=30)

    def start_gateway(self) -> None:
        self.processes["gateway"] = _spawn_gateway(self.gateway_port, self.env, self.logs)
        wait_ready(f"{self.gateway}/readyz", list(self.processes.values()), self.logs)


def _spawn_gateway(port: int, env: dict[str, str], logs: Path) -> subprocess.Popen[bytes]:
    return spawn_role("gateway", "--host", "127.0.0.1", "--port", str(port), env=env,
                  log=logs / "gateway.log")  # fmt: skip


# Module-scoped: the worker must be gone before later tiers flush Redis and enqueue their own
# submissions, or it would judge them.
@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("browser-stack")
    sandbox_root = Path(tempfile.mkdtemp(prefix="kubejudge-browser-sandbox-"))
    api_port, gateway_port = localservices.free_port(), localservices.free_port()
    env = {
        **os.environ,
        "KUBEJUDGE_REDIS_URL": settings.redis_url,
        "KUBEJUDGE_DATABASE_URL": settings.database_url,
        "KUBEJUDGE_JWT_SECRET": settings.jwt_secret,
        "KUBEJUDGE_MIGRATE_ON_START": "false",  # the `settings` fixture migrated
        "KUBEJUDGE_SANDBOX_ROOT": str(sandbox_root),
    }
    processes = {
        "api": spawn_role("api", "--host", "127.0.0.1", "--port", str(api_port), "--dev-tokens",
                          env=env, log=logs / "api.log"),
        "gateway": _spawn_gateway(gateway_port, env, logs),
        "worker": spawn_role("worker", "--concurrency", "2", "--metrics-port", "0", env=env,
                         log=logs / "worker.log"),
    }  # fmt: skip
    try:
        api, gateway = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{gateway_port}"
        wait_ready(f"{api}/readyz", list(processes.values()), logs)
        wait_ready(f"{gateway}/readyz", list(processes.values()), logs)
        yield Stack(
            page=f"{api}/?gateway=ws://127.0.0.1:{gateway_port}/ws",
            api=api,
            gateway=gateway,
            gateway_port=gateway_port,
            env=env,
            logs=logs,
            processes=processes,
        )
    finally:
        stop(processes.values())
        shutil.rmtree(sandbox_root, ignore_errors=True)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
