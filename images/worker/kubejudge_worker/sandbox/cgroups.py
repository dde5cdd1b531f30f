"""Memory (and CPU accounting) cgroups for box servers, when the host offers a writable cgroup
v1 memory controller (and cpuacct controller).

With one, a run's memory is limited and measured the way Judge0 (isolate `--cg`) does it:
the whole box is charged, including what it writes to its tmpfs, `memory` is the box's
peak usage, and an OOM kill is recorded, so memory-limit-exceeded is exact. Without one, the
box server watches the run's summed resident memory itself (see `boxd.c`).

Each box server lives in its own cgroup from its first instruction on (see `server.py`), and
runs one program at a time, so the cgroup's limit is set and its peak reset before each run.
Its cpuacct cgroup counts the CPU time of every process of a run, whatever the process does
with its signals: boxd reads it through a descriptor (see `boxd.c`).

Only cgroup v1 is handled: a cgroup v2 host needs the worker moved to a leaf cgroup with
the memory controller delegated, which is the pod's job to arrange (not done yet).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path

V1_MEMORY = Path("/sys/fs/cgroup/memory")
V1_CPUACCT = Path("/sys/fs/cgroup/cpuacct")
_counter = itertools.count()
_REMOVE_TRIES, _REMOVE_WAIT_S = 100, 0.01


class BoxCgroup:
    def __init__(self, path: Path, cpu_path: Path | None = None) -> None:
        self.path = path
        self.cpu_path = cpu_path  # its cpuacct cgroup, where the host has that controller
        self._oom_kills_before = 0
        self._baseline = 0  # bytes the box held when the run started

    def add(self, pid: int) -> None:
        for path in (self.path, self.cpu_path):
            if path is not None:
                (path / "cgroup.procs").write_text(str(pid))

    def open_cpu_usage(self) -> int | None:
        """A descriptor of the box's CPU time counter (ns), or None without cpuacct."""
        if self.cpu_path is None:
            return None
        return os.open(self.cpu_path / "cpuacct.usage", os.O_RDONLY | os.O_CLOEXEC)

    def start_run(self, memory_bytes: int) -> None:
        """Give the next run `memory_bytes` beyond what the box holds already (boxd, the work
        dir, the page cache its compile left), which its peak leaves out too, as a fresh
        cgroup per run (isolate's) would. OOM kills so far are set aside."""
        peak = self.path / "memory.max_usage_in_bytes"
        peak.write_text("0")  # the peak restarts from the current usage
        self._baseline = int(peak.read_text())
        (self.path / "memory.limit_in_bytes").write_text(str(memory_bytes + self._baseline))
        self._oom_kills_before = self._oom_kills()

    def peak_kb(self) -> int:
        """The run's peak, over what the box held when it started."""
        peak = int((self.path / "memory.max_usage_in_bytes").read_text())
        return max(0, peak - self._baseline) // 1024

    def oom_killed(self) -> bool:
        return self._oom_kills() > self._oom_kills_before

    def _oom_kills(self) -> int:
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
        return 0

    def remove(self) -> None:
        """rmdir, waiting briefly for killed processes to leave (they die asynchronously)."""
        for path in (self.path, self.cpu_path):
            if path is not None:
                _remove(path)


def _remove(path: Path) -> None:
    for _ in range(_REMOVE_TRIES):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(_REMOVE_WAIT_S)


class MemoryCgroups:
    """A parent cgroup for this worker process (in the memory and, where writable, the
    cpuacct hierarchy); one child per box server."""

    def __init__(self, parent: Path, cpu_parent: Path | None = None) -> None:
        self.parent = parent
        self.cpu_parent = cpu_parent

    @classmethod
    def detect(cls) -> MemoryCgroups | None:
        """Our own place in the v1 memory hierarchy, if we may create cgroups there."""
        parent = _own_parent(V1_MEMORY, "memory")
        return None if parent is None else cls(parent, _own_parent(V1_CPUACCT, "cpuacct"))

    def create(self) -> BoxCgroup:
        name = f"box-{next(_counter)}"
        path = self.parent / name
        path.mkdir(parents=True)  # the parent again too, if another Sandbox here closed it
        cpu_path = None
        if self.cpu_parent is not None:
            cpu_path = self.cpu_parent / name
            cpu_path.mkdir(parents=True)
        return BoxCgroup(path, cpu_path)

    def close(self) -> None:
        """Remove our cgroups; those of boxes still alive stay, for `_remove_stale`."""
        for parent in (self.parent, self.cpu_parent):
            if parent is not None:
                _remove_tree(parent)


def _own_parent(hierarchy: Path, controller: str) -> Path | None:
    """This worker's cgroup under our own place in a v1 hierarchy, if we may create it."""
    if not (hierarchy / "cgroup.procs").exists():
        return None
    own = None
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            own = path
    if own is None:
        return None
    base = hierarchy / own.lstrip("/")
    parent = base / f"kubejudge-worker-{os.getpid()}"
    try:
        parent.mkdir(exist_ok=True)
    except OSError:
        return None
    _remove_stale(base)
    return parent


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
