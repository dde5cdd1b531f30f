"""Concurrent boxes do not change each other's limits or verdicts: each box server runs as a
host uid of its own, so the kernel's per-user budgets (pipe buffers among them) are its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from kubejudge_worker.judge import Verdict, judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import fresh_sandbox, job

from kubejudge.statuses import Status

# Spends its uid's pipe budget (fs.pipe-user-pages-soft, 64 MB by default: 1080 pipes of
# 64 KB, from 9 processes, nothing written), shows that its own new pipes are now 8 KB, and
# holds on.
SPENDER = """
import fcntl, os, time
for _ in range(8):
    if os.fork() == 0:
        break
pipes = [os.pipe() for _ in range(120)]
time.sleep(0.5)
if os.getpid() == 2:  # the first process, once all have theirs
    print(fcntl.fcntl(os.pipe()[1], fcntl.F_GETPIPE_SZ), flush=True)
time.sleep(2.0)
"""
# An honest program that fills a default (64 KB) pipe before reading it.
FILLER = "import os\nr, w = os.pipe()\nos.write(w, b'x' * 65536)\nprint(len(os.read(r, 65536)))\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-slots-") as box:
        yield box


def test_one_box_spending_its_pipe_budget_leaves_the_others_theirs(sandbox: Sandbox) -> None:
    spent: list[Verdict] = []
    spender = threading.Thread(target=lambda: spent.append(judge(sandbox, job(71, SPENDER))))
    spender.start()
    time.sleep(1.0)  # the spender's pipes are in place (its output is checked below)
    verdicts = [judge(sandbox, job(71, FILLER, expected=b"65536")) for _ in range(2)]
    spender.join()
    assert spent[0].stdout == b"8192\n"  # the budget was spent, in its own box
    assert [verdict.status for verdict in verdicts] == [Status.ACCEPTED] * 2, verdicts
    assert sandbox.servers_started == 2
