"""The sandbox, behind one small interface:

    sandbox = Sandbox(SandboxConfig(...))
    with sandbox.box(family="c") as box:        # a fresh, size-capped work dir
        box.write_file("main.c", source)       # only before anything has run in it
        result = box.run(argv, stdin=b"", limits=limits, writable=True)   # compile
        result = box.run(["./a.out"], stdin=data, limits=limits)          # each test

`run` blocks (call it from a thread) and returns a `RunResult`: exit code or signal, capped
stdout/stderr, CPU time of the whole process tree, peak memory, wall time.

Boxes are served by box servers (`server.py`, `boxd.c`), one per concurrent box, kept
between submissions: the server's box is built once, and boxd makes each submission and each
run fresh inside it, at a fraction of the cost of a new bubblewrap box per run. A box given
back ends its session and opens the next one at once, so neither is on the next submission's
path.

Two modes. `bwrap` (the default): the server lives in a bubblewrap box (`bwrap.py`), and
every run gets fresh namespaces inside it. `rlimit`: the server runs on the host, and a run
is only rlimits, a dropped uid and a process group, for hosts without user namespaces; it
cannot hide the host's files or network from the program, so it is refused unless the
operator enables it explicitly, and it is reported in the metrics and by `mode()`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kubejudge_worker.sandbox import bwrap, process
from kubejudge_worker.sandbox.boxd import ensure_boxd
from kubejudge_worker.sandbox.cgroups import MemoryCgroups
from kubejudge_worker.sandbox.limits import Limits, RunResult
from kubejudge_worker.sandbox.server import BoxServer, BoxServerError
from kubejudge_worker.sandbox.toolchains import BASE_ENV, prepare_toolchains, toolchain

__all__ = [
    "Box",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxConfig",
    "SandboxError",
]

Mode = Literal["bwrap", "rlimit"]


class SandboxError(RuntimeError):
    """The sandbox cannot be used as configured (missing bwrap, refused mode, ...)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    root: Path  # where boxd is built (and, in rlimit mode, work dirs are mounted)
    mode: Mode = "bwrap"
    # Each live box server runs as a host uid (and gid) of its own from this range: bwrap is
    # started as it, so its programs are that uid to the kernel: never root, subject to
    # RLIMIT_NPROC (which exempts uid 0 even inside a user namespace), and alone with the
    # kernel's per-user budgets (pipe buffers, epoll watches, in-flight fds), which programs of
    # other slots sharing a uid could exhaust for it. Nothing else on the node (in a pod: in
    # the pod's user namespace) may use these uids.
    first_box_uid: int = 60000
    box_uids: int = 1024
    allow_rlimit_mode: bool = False
    use_cgroups: bool = True  # a memory cgroup per box when the host has a writable v1 hierarchy
    work_dir_bytes: int = 128 * 1024 * 1024
    scratch_bytes: int = 64 * 1024 * 1024  # /tmp and /dev/shm of each run


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        if config.mode == "rlimit" and not config.allow_rlimit_mode:
            raise SandboxError(
                "sandbox mode 'rlimit' does not isolate files or network; "
                "set KUBEJUDGE_SANDBOX_ALLOW_RLIMIT_MODE=true to accept that"
            )
        bwrap_path, setpriv_path = shutil.which("bwrap"), shutil.which("setpriv")
        if config.mode == "bwrap" and (bwrap_path is None or setpriv_path is None):
            raise SandboxError("sandbox mode 'bwrap' needs bubblewrap (bwrap) and setpriv on PATH")
        if config.first_box_uid <= 0 or config.box_uids <= 0:
            raise SandboxError("the sandbox must not run as host uid 0")
        self.config = config
        self.runs_started = 0  # every sandboxed command, compiles included
        self.servers_started = 0  # box servers: one per concurrent box, unless one failed
        # The box user must reach what it runs: the root and bin dirs are traversable.
        config.root.mkdir(parents=True, exist_ok=True)
        config.root.chmod(0o711)
        boxd = ensure_boxd(config.root / "bin")
        self._server_spec = bwrap.ServerSpec(
            bwrap=bwrap_path or "", setpriv=setpriv_path or "", boxd=str(boxd)
        )
        prepare_toolchains()
        self.cgroups = MemoryCgroups.detect() if config.use_cgroups else None
        self._idle: list[BoxServer] = []
        self._lock = threading.Lock()
        # Box uids not held by a live server, lowest last (popped first).
        first = config.first_box_uid
        self._free_uids = list(range(first + config.box_uids - 1, first - 1, -1))
        self._uid_holders: dict[int, BoxServer] = {}
        self._slots = itertools.count()
        # A box server dies with the thread that started it (pdeathsig, so that none outlives
        # the worker): one long-lived thread starts them all, whichever thread uses them.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="box-spawner")

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def memory_accounting(self) -> str:
        """How memory is limited and measured: "cgroup" (the whole box, exactly) or "watched"
        (boxd sums the run's resident memory every few milliseconds)."""
        return "cgroup" if self.cgroups is not None else "watched"

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for server in idle:
            server.kill()
        self._spawner.shutdown()
        if self.cgroups is not None:
            self.cgroups.close()

    @contextmanager
    def box(self, *, family: str) -> Iterator[Box]:
        env = {**BASE_ENV, **toolchain(family).env}
        server = self._take()
        try:
            yield Box(sandbox=self, server=server, env=env)
        finally:
            self._give_back(server)

    def _take(self) -> BoxServer:
        """A box server with a fresh session open: an idle one, whose session was opened when
        it was given back, or a new one."""
        while True:
            with self._lock:
                server = self._idle.pop() if self._idle else None
            if server is None:
                break
            try:
                server.settle()  # the last session's close, and this one's open
            except BoxServerError:
                self._retire(server)  # its session would not end, or the next not open
                continue
            if server.alive:  # it may have answered both, then died while idle
                return server
            self._retire(server)
        server = self._start_server()
        try:
            server.call([b"open", self._work_dir_size])
        except BoxServerError as error:
            self._retire(server)
            raise SandboxError(f"starting a box: {error}") from error
        return server

    def _give_back(self, server: BoxServer) -> None:
        """End the server's session and open the next one, without waiting for either: the
        next box finds its session ready, and its `_take` reads the replies."""
        try:
            server.request([b"close"])
            server.request([b"open", self._work_dir_size])
        except BoxServerError:
            self._retire(server)
            return
        with self._lock:
            self._idle.append(server)

    @property
    def _work_dir_size(self) -> bytes:
        return str(self.config.work_dir_bytes).encode()

    def _retire(self, server: BoxServer) -> None:
        """Kill a server that failed or died, and free its uid for a new one."""
        server.kill()
        with self._lock:
            if self._uid_holders.get(server.uid) is server:
                del self._uid_holders[server.uid]
                self._free_uids.append(server.uid)

    def _start_server(self) -> BoxServer:
        return self._spawner.submit(self._spawn_server).result()

    def _spawn_server(self) -> BoxServer:
        with self._lock:
            if not self._free_uids:
                raise SandboxError("every box uid is held by a live box server")
            uid = self._free_uids.pop()
            self.servers_started += 1
        if self.mode == "bwrap":
            argv = bwrap.server_argv(self._server_spec, uid)
        else:
            # No mount namespace of its own: its sessions mount /box at a host path.
            work_dir = self.config.root / "boxes" / f"slot-{os.getpid()}-{next(self._slots)}"
            work_dir.mkdir(parents=True, exist_ok=True)
            work_dir.parent.chmod(0o711)  # the box user passes through to its own dir only
            argv = [self._server_spec.boxd, "plain", str(work_dir), str(uid)]
        cgroup = self.cgroups.create() if self.cgroups is not None else None
        boxd = os.open(self._server_spec.boxd, os.O_RDONLY | os.O_CLOEXEC)
        try:
            server = BoxServer.start(
                argv, env={}, uid=uid, cgroup=cgroup, handshake=self.mode == "bwrap", boxd=boxd
            )
        except OSError as error:
            if cgroup is not None:
                cgroup.remove()
            with self._lock:
                self._free_uids.append(uid)
            raise SandboxError(f"starting a box server: {error}") from error
        finally:
            os.close(boxd)
        with self._lock:
            self._uid_holders[uid] = server
        return server


class Box:
    """One submission's work dir and the runs in it."""

    def __init__(self, *, sandbox: Sandbox, server: BoxServer, env: dict[str, str]) -> None:
        self._sandbox = sandbox
        self._server = server
        self._env = env
        self._has_run = False

    def write_file(self, name: str, data: bytes) -> None:
        if self._has_run:
            # After a run, the program may have planted anything in the work dir.
            raise SandboxError("files can only be written before the first run")
        fd = os.memfd_create("source", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            self._server.call([b"file", name.encode()], fds=[fd])
        except BoxServerError as error:
            raise SandboxError(f"writing {name}: {error}") from error
        finally:
            os.close(fd)

    def run(
        self,
        command: list[str],
        *,
        stdin: bytes,
        limits: Limits,
        writable: bool = False,
        merge_stderr: bool = False,
    ) -> RunResult:
        self._has_run = True
        self._sandbox.runs_started += 1
        request = process.RunRequest(
            command=command,
            env=self._env,
            stdin=stdin,
            limits=limits,
            watch_memory=self._server.cgroup is None,
            writable=writable,
            merge_stderr=merge_stderr,
            scratch_bytes=self._sandbox.config.scratch_bytes,
        )
        try:
            return process.run(self._server, request)
        except BoxServerError as error:
            raise SandboxError(f"sandbox failed: {error}") from error
