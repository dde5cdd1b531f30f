"""Real `kubejudge ROLE` processes for tests: start one with its output in a log file, wait
until an HTTP readiness URL answers 200 (failing fast, with the logs, if one exits), and stop
them all."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import httpx


def spawn_role(role: str, *args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`kubejudge ROLE ARGS...` with `env`, its stdout and stderr appended to `log`."""
    with log.open("ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "kubejudge.cli", role, *args],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_ready(
    url: str, processes: list[subprocess.Popen[bytes]], logs: Path, timeout_s: float = 60
) -> None:
    """Poll `url` until it answers 200; raise with the tails of `logs/*.log` if a process dies."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(process.poll() is not None for process in processes):
            tails = {log.name: log.read_text()[-2000:] for log in logs.glob("*.log")}
            raise RuntimeError(f"a judge process exited early: {tails}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready within {timeout_s:g} s")


def stop(processes: Iterable[subprocess.Popen[bytes]], *, timeout_s: float = 30) -> None:
    """SIGTERM every one still running, then wait for each; SIGKILL what outlives `timeout_s`."""
    processes = list(processes)
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
