"""The sandbox, behind one small interface:

    sandbox = Sandbox(SandboxConfig(...))
    with sandbox.box(family="c") as box:        # a fresh, size-capped work dir
        box.write_file("main.c", source)       # only before anything has run in it
        result = box.run(argv, stdin=b"", limits=limits, writable=True)   # compile
        result = box.run(["./a.out"], stdin=data, limits=limits)          # each test

`run` blocks (call it from a thread) and returns a `RunResult`: exit code or signal, capped
stdout/stderr, CPU time of the whole process tree, peak memory, wall time.

Two modes. `bwrap` (the default): bubblewrap namespaces + rlimits, see `bwrap.py`. `rlimit`:
only rlimits, a dropped uid and a process group, for hosts without user namespaces; it
cannot hide the host's files or network from the program, so it is refused unless the
operator enables it explicitly, and it is reported in the metrics and by `mode()`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from kubejudge_worker.sandbox import bwrap, process
from kubejudge_worker.sandbox.boxinit import ensure_boxinit
from kubejudge_worker.sandbox.cgroups import MemoryCgroups
from kubejudge_worker.sandbox.limits import Limits, RunResult
from kubejudge_worker.sandbox.toolchains import BASE_ENV, prepare_toolchains, toolchain
from kubejudge_worker.sandbox.workdir import WorkDir, WorkDirError

__all__ = [
    "Box",
    "Limits",
    "RunOptions",
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
    root: Path  # where work dirs are mounted and boxinit is built
    mode: Mode = "bwrap"
    # The unprivileged host uid (and gid) every box runs as. bwrap is started as this uid, so
    # the program is this uid to the kernel: never root, and subject to RLIMIT_NPROC (which
    # exempts uid 0 even inside a user namespace).
    host_uid: int = 65534
    allow_rlimit_mode: bool = False
    use_cgroups: bool = True  # per-run memory cgroups when the host has a writable v1 hierarchy
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
        if config.host_uid == 0:
            raise SandboxError("the sandbox must not run as host uid 0")
        self.config = config
        self.runs_started = 0  # every sandboxed command, compiles included
        self._bwrap = bwrap_path or ""
        self._setpriv = setpriv_path or ""
        # The box user must reach what it runs: the root and bin dirs are traversable.
        config.root.mkdir(parents=True, exist_ok=True)
        config.root.chmod(0o711)
        self._boxinit = ensure_boxinit(config.root / "bin")
        prepare_toolchains()
        # The handshake that puts a box in its cgroup needs bwrap; rlimit mode goes without.
        self.cgroups = None
        if config.use_cgroups and config.mode == "bwrap":
            self.cgroups = MemoryCgroups.detect()

    @property
    def mode(self) -> Mode:
        return self.config.mode

    @property
    def memory_accounting(self) -> str:
        """How memory is limited and measured: "cgroup" (whole box) or "rlimit" (per process)."""
        return "cgroup" if self.cgroups is not None else "rlimit"

    def close(self) -> None:
        if self.cgroups is not None:
            self.cgroups.close()

    @contextmanager
    def box(self, *, family: str) -> Iterator[Box]:
        try:
            work_dir = WorkDir(
                root=self.config.root / "boxes",
                size_bytes=self.config.work_dir_bytes,
                owner_uid=self.owner_uid,
            )
        except WorkDirError as error:
            raise SandboxError(str(error)) from error
        try:
            yield Box(sandbox=self, work_dir=work_dir, family=family)
        finally:
            work_dir.remove()

    @property
    def owner_uid(self) -> int:
        """Host uid owning the work dir: the uid the box runs as."""
        return self.config.host_uid

    def spawn(
        self, *, work_dir: WorkDir, family: str, command: list[str], options: RunOptions
    ) -> process.Spawn:
        memory_rlimit = self.cgroups is None
        if self.mode == "rlimit":
            init = process.boxinit_args(
                limits=options.limits,
                report_fd=bwrap.REPORT_FD,
                uid=self.config.host_uid,
                memory_rlimit=memory_rlimit,
                directory=str(work_dir.path),
            )
            head = command[0]
            if head.startswith("./"):  # no mount namespace: resolve against the work dir
                head = str(work_dir.path / head[2:])
            return process.Spawn(
                argv=[str(self._boxinit), *init, head, *command[1:]],
                stdin=options.stdin,
                limits=options.limits,
                merge_stderr=options.merge_stderr,
                env={**BASE_ENV, **toolchain(family).env},
            )
        init = process.boxinit_args(
            limits=options.limits, report_fd=bwrap.REPORT_FD, uid=-1, memory_rlimit=memory_rlimit
        )
        spec = bwrap.BoxSpec(
            bwrap=self._bwrap,
            setpriv=self._setpriv,
            host_uid=self.config.host_uid,
            boxinit=str(self._boxinit),
            work_dir=str(work_dir.path),
            writable=options.writable,
            toolchain=toolchain(family),
            scratch_bytes=self.config.scratch_bytes,
        )
        return process.Spawn(
            argv=bwrap.bwrap_argv(spec, [*init, *command]),
            stdin=options.stdin,
            limits=options.limits,
            merge_stderr=options.merge_stderr,
            env={},
            handshake=(bwrap.INFO_FD, bwrap.BLOCK_FD),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    stdin: bytes
    limits: Limits
    writable: bool = False  # compile writes into /box; test runs see it read-only
    merge_stderr: bool = False


class Box:
    """One submission's work dir and the runs in it."""

    def __init__(self, *, sandbox: Sandbox, work_dir: WorkDir, family: str) -> None:
        self._sandbox = sandbox
        self._work_dir = work_dir
        self._family = family
        self._has_run = False

    def write_file(self, name: str, data: bytes) -> None:
        if self._has_run:
            # After a run, the program may have planted anything in the work dir.
            raise SandboxError("files can only be written before the first run")
        self._work_dir.write_file(name, data, owner_uid=self._sandbox.owner_uid)

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
        options = RunOptions(
            stdin=stdin, limits=limits, writable=writable, merge_stderr=merge_stderr
        )
        spawn = self._sandbox.spawn(
            work_dir=self._work_dir, family=self._family, command=command, options=options
        )
        cgroups = self._sandbox.cgroups
        if cgroups is None:
            return process.run(spawn, report_fd=bwrap.REPORT_FD)
        resident = cgroups.for_this_thread()
        if resident is not None:
            resident.limit(limits.memory_kb * 1024)
            resident.reset()
            spawn = replace(spawn, cgroup=resident, join_cgroup=False)
            return process.run(spawn, report_fd=bwrap.REPORT_FD)
        cgroup = cgroups.create()
        try:
            cgroup.limit(limits.memory_kb * 1024)
            return process.run(replace(spawn, cgroup=cgroup), report_fd=bwrap.REPORT_FD)
        finally:
            cgroup.remove()
