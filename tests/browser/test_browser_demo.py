"""The demo's first ten minutes in a real browser, against what `kubejudge dev` runs: the
seeded problems, an autoscaled local pool with its default size, the api and a gateway. A
newcomer signs in, solves a seeded problem (wrong, then right) and sees both verdicts live,
then watches the worker pool grow under a burst and drain."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubejudge_dev import localservices
from kubejudge_dev.seed import seed_if_empty
from redis.asyncio import Redis
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import text
from support.processes import spawn_role, stop, wait_ready
from test_browser_live_verdicts import sign_in, submit, wait_status

from kubejudge.db.engine import create_engine
from kubejudge.settings import Settings

WRONG = "print(1)\n"
RIGHT = "a, b = map(int, input().split())\nprint(a + b)\n"
SLOW = "import time\ntime.sleep(2)\n"


async def _fresh_seeded_judge(settings: Settings) -> None:
    """An empty judge seeded as `kubejudge dev` seeds one (other tiers leave rows behind)."""
    engine = create_engine(settings, pool_size=1)
    redis = Redis.from_url(settings.redis_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("TRUNCATE problems, submissions RESTART IDENTITY CASCADE")
            )
        await redis.flushall()
        assert await seed_if_empty(engine, redis, ttl_s=300)
    finally:
        await redis.aclose()
        await engine.dispose()


@pytest.fixture
def demo(settings: Settings, tmp_path: Path, browser_env: dict[str, str]) -> Iterator[str]:
    """The page of a judge run as `kubejudge dev` runs it; stopped after the test."""
    asyncio.run(_fresh_seeded_judge(settings))
    api_port, gateway_port = localservices.free_port(), localservices.free_port()
    pool = [sys.executable, "-m", "kubejudge_dev.localpool", "--pool", "default",
            "--worker-arg=--metrics-port=0"]  # fmt: skip
    with (tmp_path / "workers.log").open("ab") as log:
        workers = subprocess.Popen(pool, env=browser_env, stdout=log, stderr=subprocess.STDOUT)
    processes = [
        spawn_role("api", "--host", "127.0.0.1", "--port", str(api_port), "--dev-tokens",
                   env=browser_env, log=tmp_path / "api.log"),
        spawn_role("gateway", "--host", "127.0.0.1", "--port", str(gateway_port),
                   env=browser_env, log=tmp_path / "gateway.log"),
        workers,
    ]  # fmt: skip
    try:
        api = f"http://127.0.0.1:{api_port}"
        wait_ready(f"{api}/readyz", processes, tmp_path)
        wait_ready(f"http://127.0.0.1:{gateway_port}/readyz", processes, tmp_path)
        yield f"{api}/?gateway=ws://127.0.0.1:{gateway_port}/ws"
    finally:
        stop(processes)


@pytest.fixture
def browser_env(settings: Settings) -> Iterator[dict[str, str]]:
    sandbox_root = Path(tempfile.mkdtemp(prefix="kubejudge-browser-demo-"))
    yield {
        **os.environ,
        "KUBEJUDGE_REDIS_URL": settings.redis_url,
        "KUBEJUDGE_DATABASE_URL": settings.database_url,
        "KUBEJUDGE_JWT_SECRET": settings.jwt_secret,
        "KUBEJUDGE_MIGRATE_ON_START": "false",
        "KUBEJUDGE_SANDBOX_ROOT": str(sandbox_root),
    }
    shutil.rmtree(sandbox_root, ignore_errors=True)


def pool_cell(driver: webdriver.Chrome, name: str) -> int:
    """A number from the pools view (-1 while absent); read in one script, since every update
    replaces the rows."""
    value = driver.execute_script(
        "const cell = document.querySelector(`#pools tr[data-pool='default'] td.${arguments[0]}`);"
        " return cell ? cell.textContent : '';",
        name,
    )
    return int(value) if value.isdigit() else -1


def test_a_newcomer_solves_a_seeded_problem_and_watches_the_pool_scale(
    demo: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    sign_in(browser, demo, f"newcomer-{uuid.uuid4().hex[:8]}")
    WebDriverWait(browser, 30).until(lambda d: pool_cell(d, "live") >= 0)

    Select(browser.find_element(By.ID, "problem")).select_by_visible_text("A + B")
    WebDriverWait(browser, 30).until(
        lambda d: d.find_element(By.ID, "statement-title").text == "A + B"
    )
    assert "hidden tests" in browser.find_element(By.ID, "statement-hidden").text
    wrong = submit(browser, WRONG)
    wait_status(browser, wrong, "Wrong Answer")
    right = submit(browser, RIGHT)
    wait_status(browser, right, "Accepted")

    page = demo.split("/?")[0]
    minted = httpx.post(f"{page}/auth/dev-token", json={"user_id": "burst"}).json()["token"]
    headers = {"Authorization": f"Bearer {minted}"}
    for _ in range(24):
        body = {"source_code": SLOW, "language_id": 71}
        assert httpx.post(f"{page}/submissions", json=body, headers=headers).status_code == 201
    WebDriverWait(browser, 60).until(lambda d: pool_cell(d, "live") >= 3)
    assert pool_cell(browser, "wanted") >= 3
    browser.set_window_size(1280, 1500)
    browser.save_screenshot(str(tmp_path / "burst.png"))
    WebDriverWait(browser, 120).until(lambda d: pool_cell(d, "waiting") == 0)
