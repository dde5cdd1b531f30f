"""Memory a run holds in the kernel, which is nobody's RSS, counts against its limit: SysV
shared memory, tmpfs files (POSIX shared memory among them), socket and pipe buffers. A run
holding it past its limit gets the memory-limit outcome, never Accepted; memfds are refused,
and the tmpfs mounts of a box have an inode cap (empty files cost kernel memory too).

Watched mode (every Kubernetes pod) counts all of it; with a memory cgroup, which charges
the rest, boxd counts the socket buffers that cgroup v1 leaves out.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubejudge_worker.judge import judge
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import fresh_sandbox, job

from kubejudge.statuses import Status

# Each holds ~400 MB (or all it can get) against the tier's 128 MB limit, then sleeps.
SYSV_SHM = """
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
held = 0
for _ in range(50):
    segment = libc.shmget(0, 8 << 20, 0o1600)  # IPC_PRIVATE, detached once filled
    if segment < 0:
        break
    address = libc.shmat(segment, None, 0)
    ctypes.memset(address, 1, 8 << 20)
    libc.shmdt(ctypes.c_void_p(address))
    held += 8
print("held", held, flush=True)
time.sleep(1)
"""
UNIX_SOCKETS = """
import socket, time
pairs, held = [], 0
while held < 400 << 20 and len(pairs) < 100:
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    try:
        while True:
            held += a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    pairs.append((a, b))
print("held", held >> 20, flush=True)
time.sleep(1)
"""
TCP_LOOPBACK = """
import socket, time
server = socket.socket(); server.bind(("127.0.0.1", 5000)); server.listen(128)
held, peers = 0, []
for _ in range(100):
    client = socket.create_connection(("127.0.0.1", 5000)); peer, _ = server.accept()
    client.setblocking(False)
    try:
        while True:
            held += client.send(b"x" * 65536)
    except BlockingIOError:
        pass
    peers.append((client, peer))
print("held", held >> 20, flush=True)
time.sleep(1)
"""
TMPFS_FILES = """
import time
for directory in ("/tmp", "/dev/shm"):  # 60 MB each, within each mount's 64 MB cap, in
    for i in range(60):                 # files within the 1 MB file size limit
        with open(f"{directory}/{i}", "wb") as f:
            f.write(b"x" * (1 << 20))
block = b"y" * (30 << 20)
print("held", 150, flush=True)
time.sleep(1)
"""
PIPES = """
import os, time
pipes = []
for _ in range(8):  # 8 processes of 120 pipes, 64 KB unread in each: 60 MB ...
    if os.fork() == 0:
        break
for _ in range(120):
    r, w = os.pipe()
    os.set_blocking(w, False)
    try:
        while True:
            os.write(w, b"x" * 65536)
    except BlockingIOError:
        pass
    pipes.append((r, w))
print("held", len(pipes), flush=True)
time.sleep(1.5)
"""
HOLDERS = {
    "sysv_shm": SYSV_SHM,
    "unix_sockets": UNIX_SOCKETS,
    "tcp_loopback": TCP_LOOPBACK,
    "tmpfs_files": TMPFS_FILES,
    "pipes": PIPES,
}


@pytest.fixture(scope="module")
def watched() -> Iterator[Sandbox]:
    with fresh_sandbox("kubejudge-kernel-memory-", use_cgroups=False) as box:
        assert box.memory_accounting == "watched"
        yield box


@pytest.mark.parametrize("kind", HOLDERS)
def test_kernel_memory_past_the_limit_is_a_memory_limit(watched: Sandbox, kind: str) -> None:
    verdict = judge(watched, job(71, HOLDERS[kind], expected=None))
    assert verdict.memory_limit_exceeded, verdict
    assert verdict.status is not Status.ACCEPTED


@pytest.mark.parametrize("kind", ["unix_sockets", "tcp_loopback"])
def test_socket_buffers_count_beside_a_memory_cgroup(sandbox: Sandbox, kind: str) -> None:
    verdict = judge(sandbox, job(71, HOLDERS[kind], expected=None))
    assert verdict.memory_limit_exceeded, verdict
    assert verdict.status is not Status.ACCEPTED


def test_an_honest_program_with_some_files_and_a_pipe_is_accepted(watched: Sandbox) -> None:
    source = (
        "import os, subprocess\n"
        "open('/tmp/scratch', 'w').write('x' * 100000)\n"
        "print(subprocess.run(['/bin/echo', 'hi'], capture_output=True).stdout.decode(), end='')\n"
    )
    verdict = judge(watched, job(71, source, expected=b"hi"))
    assert verdict.status is Status.ACCEPTED, verdict
    assert verdict.memory is not None and verdict.memory < 40_000


def test_memfds_are_refused(watched: Sandbox) -> None:
    source = "import os\ntry:\n    os.memfd_create('x')\nexcept OSError as e:\n    print(e.errno)\n"
    verdict = judge(watched, job(71, source, expected=b"38"))  # ENOSYS
    assert verdict.status is Status.ACCEPTED, verdict


@pytest.mark.parametrize("directory", ["/tmp", "/dev/shm"])
def test_the_scratch_mounts_have_an_inode_cap(watched: Sandbox, directory: str) -> None:
    source = (
        "import os\ncreated = 0\n"
        "try:\n"
        "    for i in range(100000):\n"
        f"        open(f'{directory}/{{i}}', 'w').close(); created += 1\n"
        "except OSError as e:\n"
        "    print(created, e.errno)\n"
    )
    verdict = judge(watched, job(71, source, expected=None))
    created, errno = (int(word) for word in (verdict.stdout or b"0 0").split())
    assert errno == 28 and created < 1024, verdict  # ENOSPC at the cap
