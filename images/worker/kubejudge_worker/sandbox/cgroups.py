"""Per-run memory cgroups, when the host offers a writable cgroup v1 memory controller.

With one, a run's memory is limited and measured the way Judge0 (isolate `--cg`) does it:
the whole box is charged, including what it writes to its tmpfs, `memory` is the box's
peak usage, and an OOM kill is recorded, so memory-limit-exceeded is exact. Without one, the
sandbox falls back to RLIMIT_DATA per process and the peak RSS (see `limits.py`).

Only cgroup v1 is handled: a cgroup v2 host needs the worker moved to a leaf cgroup with
the memory controller delegated, which is the pod's job to arrange (not done yet).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path

V1_MEMORY = Path("/sys/fs/cgroup/memory")
_counter = itertools.count()


class RunCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path

    def limit(self, memory_bytes: int) -> None:
        (self.path / "memory.limit_in_bytes").write_text(str(memory_bytes))

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def peak_kb(self) -> int:
        return int((self.path / "memory.max_usage_in_bytes").read_text()) // 1024

    def oom_killed(self) -> bool:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value) > 0
        return int((self.path / "memory.failcnt").read_text()) > 0

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


class MemoryCgroups:
    """A parent cgroup for this worker process; one child per run."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent

    @classmethod
    def detect(cls) -> MemoryCgroups | None:
        """Our own place in the v1 memory hierarchy, if we may create cgroups there."""
        if not (V1_MEMORY / "cgroup.procs").exists():
            return None
        own = None
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                own = path
        if own is None:
            return None
        base = V1_MEMORY / own.lstrip("/")
        parent = base / f"kubejudge-worker-{os.getpid()}"
        try:
            parent.mkdir(exist_ok=True)
        except OSError:
            return None
        _remove_stale(base)
        return cls(parent)

    def create(self) -> RunCgroup:
        path = self.parent / f"run-{next(_counter)}"
        path.mkdir(parents=True)  # the parent again too, if another Sandbox here closed it
        return RunCgroup(path)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.parent.rmdir()


def _remove_stale(base: Path) -> None:
    """Remove the (empty) cgroups of workers that died without cleaning up."""
    for stale in base.glob("kubejudge-worker-*"):
        pid = stale.name.rpartition("-")[2]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        with contextlib.suppress(OSError):
            for child in stale.glob("run-*"):
                child.rmdir()
            stale.rmdir()
