"""Box servers are kept between submissions, and replaced when one is gone."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import fresh_sandbox, job, processes_of
from support.polling import wait_until

from kubejudge.statuses import Status

ECHO = job(71, "print(input())", stdin=b"hi", expected=b"hi")


SERVER_UID = 61500  # this file's box servers only: how the test finds their processes


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-servers-", first_box_uid=SERVER_UID, box_uids=8) as box:
        yield box


def test_one_server_judges_submission_after_submission(sandbox: Sandbox) -> None:
    for _ in range(5):
        assert judge(sandbox, ECHO).status is Status.ACCEPTED
    assert sandbox.servers_started == 1


def test_a_box_given_back_has_the_next_session_opened_at_once(sandbox: Sandbox) -> None:
    """The next submission does not wait for the last one's session to end or its own to
    start: the idle server's boxd already serves a fresh session (its one child)."""
    assert judge(sandbox, ECHO).status is Status.ACCEPTED
    wait_until(lambda: len(_boxd_children()) == 1, what="the next session to open")
    [session] = _boxd_children()
    assert judge(sandbox, ECHO).status is Status.ACCEPTED
    assert sandbox.servers_started == 1
    wait_until(lambda: len(_boxd_children()) == 1, what="the session after that to open")
    assert _boxd_children() != [session]  # every submission has a session of its own


def _boxd_children() -> list[int]:
    """The children of this file's boxd processes (their sessions, not the boxes' own)."""
    children = []
    for pid in processes_of(SERVER_UID):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != ".boxd":
                continue
            listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            continue
        children += [int(child) for child in listed]
    return children


def test_a_server_that_died_is_replaced(sandbox: Sandbox) -> None:
    assert judge(sandbox, ECHO).status is Status.ACCEPTED
    for pid in processes_of(SERVER_UID):  # the idle server's bwrap and box
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not processes_of(SERVER_UID), what="the box to die")
    assert judge(sandbox, ECHO).status is Status.ACCEPTED
    assert sandbox.servers_started == 2


def test_servers_outlive_the_threads_that_used_them(sandbox: Sandbox) -> None:
    # The worker's judging threads come and go; the box servers stay.
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(judge, sandbox, ECHO).result().status is Status.ACCEPTED
    assert sandbox.servers_started == 1


def test_concurrent_boxes_get_servers_of_their_own(sandbox: Sandbox) -> None:
    sleepy = replace(ECHO, source=b"import time\ntime.sleep(0.3)\nprint(input())")
    with ThreadPoolExecutor(max_workers=3) as pool:
        verdicts = list(pool.map(lambda _: judge(sandbox, sleepy), range(3)))
    assert [verdict.status for verdict in verdicts] == [Status.ACCEPTED] * 3
    assert sandbox.servers_started == 3
