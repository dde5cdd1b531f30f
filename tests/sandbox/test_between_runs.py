"""Nothing a run does is visible to a later run, of the same submission or the next one:
network state (TIME_WAIT sockets outlive their process), files in /tmp and /dev/shm, SysV
IPC, the hostname. One box server judges every submission here, as in a worker whose slot
is reused."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubejudge_worker.judge import Case, judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import fresh_sandbox, job

from kubejudge.statuses import Status

# "plant": leave what a program can leave behind; "probe": print what of it is still there.
PROGRAM = r"""
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
if sys.stdin.read().strip() == "plant":
    server = socket.socket(); server.bind(("127.0.0.1", 41414)); server.listen(64)
    for port in range(42000, 42032):  # the client closes first: its side stays in TIME_WAIT
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        client.bind(("127.0.0.1", port)); client.connect(("127.0.0.1", 41414))
        peer, _ = server.accept(); client.close(); peer.close()
    listener = socket.socket(socket.AF_INET6); listener.bind(("::1", 41415)); listener.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(7):  # the namespace's counters would carry "7" to the next run
        udp.sendto(b"x", ("127.0.0.1", 9))
    open("/tmp/left", "w").write("x"); open("/dev/shm/left", "w").write("x")
    libc.shmget(4242, 4096, 0o1666)
    libc.msgget(4243, 0o1666)
    libc.sethostname(b"planted", 7)
    print("planted")
else:
    sockets = 0
    for table in ("tcp", "tcp6", "udp", "udp6", "raw", "unix"):
        sockets += len(open(f"/proc/net/{table}").read().splitlines()) - 1
    snmp = [line.split() for line in open("/proc/net/snmp")]
    udp = [snmp[i + 1] for i, row in enumerate(snmp) if row[0] == "Udp:"][0]
    lo = [line.split() for line in open("/proc/net/dev") if line.strip().startswith("lo:")][0]
    print(sockets, udp[4], lo[1], os.path.exists("/tmp/left"), os.path.exists("/dev/shm/left"),
          libc.shmget(4242, 0, 0) >= 0, libc.msgget(4243, 0) >= 0, socket.gethostname())
"""
CLEAN = b"0 0 0 False False False False box\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-between-runs-") as box:
        yield box


def test_the_next_submission_sees_nothing_of_the_last(sandbox: Sandbox) -> None:
    planted = judge(sandbox, job(71, PROGRAM, stdin=b"plant", expected=b"planted"))
    assert planted.status is Status.ACCEPTED, planted.stderr
    probe = judge(sandbox, job(71, PROGRAM, stdin=b"probe", expected=CLEAN))
    assert probe.stdout == CLEAN
    assert sandbox.servers_started == 1


def test_the_next_test_case_sees_nothing_of_the_last(sandbox: Sandbox) -> None:
    cases = [Case(stdin=b"plant", expected_output=b"planted"), Case(b"probe", CLEAN)]
    verdict = judge(sandbox, job(71, PROGRAM, tests=cases))
    assert verdict.status is Status.ACCEPTED, verdict.stdout


def test_runs_that_never_used_the_network_share_a_namespace(sandbox: Sandbox) -> None:
    # A new network namespace costs about a millisecond: only a run that used it pays.
    source = "import os\nprint(os.readlink('/proc/self/ns/net'))\n"
    cases = [Case(stdin=b"", expected_output=None) for _ in range(3)]
    with sandbox.box(family="python") as box:
        box.write_file("script.py", source.encode())
        limits = job(71, source).limits
        seen = {
            box.run(["/usr/bin/python3", "script.py"], stdin=b"", limits=limits).stdout
            for _ in cases
        }
    assert len(seen) == 1, seen
