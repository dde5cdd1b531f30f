"""Memory cgroups for box servers, when the host offers a writable cgroup v1 memory controller.

With one, a run's memory is limited and measured the way Judge0 (isolate `--cg`) does it:
the whole box is charged, including what it writes to its tmpfs, `memory` is the box's
peak usage, and an OOM kill is recorded, so memory-limit-exceeded is exact. Without one, the
box server watches the run's summed resident memory itself (see `boxd.c`).

Each box server lives in its own cgroup from its first instruction on (see `server.py`), and
runs one program at a time, so the cgroup's limit is set and its peak reset before each run.

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
_counter = itertools.count()
_REMOVE_TRIES, _REMOVE_WAIT_S = 100, 0.01


class BoxCgroup:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._oom_kills_before = 0
        self._baseline = 0  # bytes the box held when the run started

    def add(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

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
        for _ in range(_REMOVE_TRIES):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(_REMOVE_WAIT_S)


class MemoryCgroups:
    """A parent cgroup for this worker process; one child per box server."""

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

    def create(self) -> BoxCgroup:
        path = self.parent / f"box-{next(_counter)}"
        path.mkdir(parents=True)  # the parent again too, if another Sandbox here closed it
        return BoxCgroup(path)

    def close(self) -> None:
        """Remove our cgroups; those of boxes still alive stay, for `_remove_stale`."""
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
