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
import threading
from pathlib import Path

V1_MEMORY = Path("/sys/fs/cgroup/memory")
_counter = itertools.count()


class RunCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._oom_kills_before = 0

    def limit(self, memory_bytes: int) -> None:
        (self.path / "memory.limit_in_bytes").write_text(str(memory_bytes))

    def reset(self) -> None:
        """Start a new run in a reused cgroup: peak back to the current usage, OOM kills so
        far set aside."""
        (self.path / "memory.max_usage_in_bytes").write_text("0")
        self._oom_kills_before = self._oom_kills()

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def peak_kb(self) -> int:
        return int((self.path / "memory.max_usage_in_bytes").read_text()) // 1024

    def oom_killed(self) -> bool:
        return self._oom_kills() > self._oom_kills_before

    def _oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


class MemoryCgroups:
    """A parent cgroup for this worker process; one child per run."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self._local = threading.local()

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

    def for_this_thread(self) -> RunCgroup | None:
        """A cgroup this thread lives in, so the processes it spawns start inside it.

        Moving a process into a v1 cgroup waits for an RCU grace period (milliseconds); a
        thread moved once spawns every later box straight into its cgroup, which is reset
        between runs. Memory is charged per process (mm), so the worker itself is not. Never
        for the main thread: it owns the worker's memory, which would land under a box's limit.
        None there; the caller moves each box instead.
        """
        if threading.get_native_id() == os.getpid():
            return None
        cgroup = getattr(self._local, "cgroup", None)
        if cgroup is None:
            path = self.parent / f"thread-{threading.get_native_id()}"
            path.mkdir(parents=True, exist_ok=True)
            (path / "tasks").write_text(str(threading.get_native_id()))
            cgroup = self._local.cgroup = RunCgroup(path)
        return cgroup

    def create(self) -> RunCgroup:
        path = self.parent / f"run-{next(_counter)}"
        path.mkdir(parents=True)  # the parent again too, if another Sandbox here closed it
        return RunCgroup(path)

    def close(self) -> None:
        """Remove our cgroups; those of threads still alive stay, for `_remove_stale`."""
        _remove_tree(self.parent)


def _remove_stale(base: Path) -> None:
    """Remove the (empty) cgroups of workers that died without cleaning up."""
    for stale in base.glob("kubejudge-worker-*"):
        pid = stale.name.rpartition("-")[2]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        _remove_tree(stale)


def _remove_tree(parent: Path) -> None:
    """rmdir a worker's cgroup and its (process-free) children; cgroupfs needs no unlinks."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        parent.rmdir()
