"""What a sandbox run may use, and what it did use."""

from __future__ import annotations

import math
from dataclasses import dataclass

MSGQUEUE_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """Judge0's per-run limits, in Judge0's units (seconds, kilobytes)."""

    cpu_time_s: float
    cpu_extra_time_s: float
    wall_time_s: float
    memory_kb: int
    stack_kb: int
    max_processes: int
    max_file_size_kb: int
    max_open_files: int = 256
    output_limit_bytes: int  # stdout and stderr each; more ends the run (Judge0's SIGXFSZ)

    def rlimits(self) -> dict[str, int]:
        """The kernel limits boxd applies to the program (bytes, seconds, counts).

        RLIMIT_CPU is a per-process backstop at limit + extra (whole seconds, rounded up): boxd
        itself ends the whole tree once its CPU time passes limit + extra, and the verdict
        compares the measured CPU time with `cpu_time_s`. Memory has no rlimit: RLIMIT_AS and
        RLIMIT_DATA count address space that the JVM, V8 and Go reserve but never touch (and
        thread stacks in full), so neither could start; a memory cgroup limits the whole box,
        or else boxd watches the tree's resident memory. NPROC counts per submission, which
        has a user namespace of its own; +2 for the two boxd processes in it (the session and
        the run's init). POSIX message queues hold at most MSGQUEUE_BYTES: memory in the kernel
        that nothing else counts.
        """
        limits = {
            "cpu": max(1, math.ceil(self.cpu_time_s + self.cpu_extra_time_s)),
            "stack": self.stack_kb * 1024 if self.stack_kb > 0 else 8 * 1024 * 1024,
            "nproc": self.max_processes + 2,
            "fsize": self.max_file_size_kb * 1024,
            "nofile": self.max_open_files,
            "core": 0,
            "msgqueue": MSGQUEUE_BYTES,
        }
        return limits


@dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    """One run, measured by boxd (CPU of the whole process tree, peak RSS, wall time)."""

    exit_code: int | None  # None when killed by a signal
    exit_signal: int | None
    stdout: bytes
    stderr: bytes
    time_s: float
    wall_time_s: float
    memory_kb: int
    wall_timed_out: bool = False
    output_limit_exceeded: bool = False  # stdout or stderr passed the cap; the run was ended
    memory_limit_exceeded: bool = False
    exec_error: str | None = None  # the command could not be executed (Exec Format Error)
    box_error: str | None = None  # the sandbox itself failed: an Internal Error, not the program's

    @property
    def succeeded(self) -> bool:
        return (
            self.exit_code == 0
            and not self.wall_timed_out
            and not self.output_limit_exceeded
            and self.exec_error is None
            and self.box_error is None
        )
