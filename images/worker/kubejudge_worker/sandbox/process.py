"""Start one sandboxed command, feed it stdin, collect capped output and boxinit's report.

Blocking by design: the worker calls it in a thread. The process is started with
`posix_spawn` (no Python code runs between fork and exec, so it is safe in a threaded
program, unlike `preexec_fn`), in a new session; stdin comes from a memfd, so a program that
never reads cannot stall us. If boxinit's own wall clock fails to end the run, the host kills
bwrap after a grace period and `--die-with-parent` takes the whole box down with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import selectors
import signal
import time
from dataclasses import dataclass, replace

from kubejudge_worker.sandbox.cgroups import RunCgroup
from kubejudge_worker.sandbox.limits import Limits, RunResult

HOST_GRACE_S = 2.0  # beyond the wall limit, before the host kills the box itself
_REPORT = re.compile(
    rb"status=(-?\d+) cpu_us=(\d+) maxrss_kb=(\d+) wall_us=(\d+) timed_out=([01])\n"
)
_EXEC_ERRNO = re.compile(rb"exec_errno=(\d+)\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Spawn:
    argv: list[str]  # the full command line: bwrap ... boxinit ... COMMAND, or boxinit ...
    stdin: bytes
    limits: Limits
    merge_stderr: bool = False  # Judge0's redirect_stderr_to_stdout
    env: dict[str, str]  # bwrap builds the box's own; rlimit mode passes it to the program
    # bwrap mode: (info fd, block fd) of the handshake that puts the box in `cgroup` first.
    handshake: tuple[int, int] | None = None
    cgroup: RunCgroup | None = None  # limits and measures the box
    join_cgroup: bool = True  # move the box into it (False: it starts there already)


def boxinit_args(
    *, limits: Limits, report_fd: int, uid: int, memory_rlimit: bool, directory: str = "-"
) -> list[str]:
    rlimits = limits.rlimits(memory_rlimit=memory_rlimit)
    rlimits_text = ",".join(f"{name}={value}" for name, value in rlimits.items())
    wall_ms = max(1, round(limits.wall_time_s * 1000))
    return [str(report_fd), str(wall_ms), str(uid), directory, rlimits_text, "--"]


def run(spawn: Spawn, *, report_fd: int) -> RunResult:
    stdin_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    os.write(stdin_fd, spawn.stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    targets = {0: stdin_fd, 1: out_w, 2: out_w if spawn.merge_stderr else err_w, report_fd: rep_w}
    ours = [stdin_fd, out_w, err_w, rep_w]
    if spawn.handshake is not None:
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        targets |= {spawn.handshake[0]: info_w, spawn.handshake[1]: block_r}
        ours += [info_w, block_r]
    started = time.monotonic()
    pid = _spawn(spawn, targets, ours)
    joining = spawn.cgroup if spawn.join_cgroup else None
    if spawn.handshake is not None and not _handshake(info_r, block_w, joining):
        _kill(pid)
        os.wait4(pid, 0)
        for fd in (out_r, err_r, rep_r):
            os.close(fd)
        raise OSError("could not move the box into its memory cgroup")
    deadline = started + spawn.limits.wall_time_s + HOST_GRACE_S
    streams, overflow, killed = _collect(
        pid, {out_r: b"", err_r: b"", rep_r: b""}, spawn.limits.output_limit_bytes, deadline
    )
    _, status, _ = os.wait4(pid, 0)
    wall = time.monotonic() - started
    result = _result(
        streams[out_r], streams[err_r], streams[rep_r],
        overflow=overflow, killed=killed, bwrap_status=status, host_wall_s=wall,
    )  # fmt: skip
    if spawn.cgroup is not None:
        oom_killed = spawn.cgroup.oom_killed()
        if oom_killed and result.box_error is not None:
            # The OOM killer picked boxinit itself: the program's doing, not the sandbox's.
            result = replace(result, box_error=None, time_s=result.wall_time_s)
        return replace(result, memory_kb=spawn.cgroup.peak_kb(), memory_limit_exceeded=oom_killed)
    return replace(result, memory_limit_exceeded=result.memory_kb > spawn.limits.memory_kb)


def _spawn(spawn: Spawn, targets: dict[int, int], ours: list[int]) -> int:
    """posix_spawn with `targets` (child fd -> our fd); closes our copies of the child's ends."""
    # Lift every source above the targets first, so no dup2 clobbers a source still needed.
    lifted = {target: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 16) for target, fd in targets.items()}
    actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in lifted.items()]
    try:
        return os.posix_spawn(
            spawn.argv[0], spawn.argv, spawn.env, file_actions=actions, setsid=True
        )
    finally:
        for fd in [*ours, *lifted.values()]:
            os.close(fd)


def _handshake(info_r: int, block_w: int, cgroup: RunCgroup | None) -> bool:
    """Move the box's first process into its cgroup before it may exec the program.

    False if that failed: the caller must kill the box, since closing the block fd
    unwritten would let it run unconfined.
    """
    with os.fdopen(info_r, "rb") as info:
        text = info.read(4096)
    match = re.search(rb'"child-pid"\s*:\s*(\d+)', text)
    try:
        if cgroup is not None and match is not None:
            try:
                cgroup.add(int(match.group(1)))
            except OSError:
                return False
        with contextlib.suppress(OSError):  # bwrap already failed: its stderr tells why
            os.write(block_w, b"go")
    finally:
        os.close(block_w)
    return True


def _collect(
    pid: int, streams: dict[int, bytes], cap: int, deadline: float
) -> tuple[dict[int, bytes], bool, bool]:
    """Read every stream to EOF; end the run if one passes `cap` or the deadline passes."""
    overflow = killed = False
    chunks: dict[int, list[bytes]] = {fd: [] for fd in streams}
    sizes = dict.fromkeys(streams, 0)
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            timeout = deadline - time.monotonic()
            if timeout <= 0 and not killed:
                _kill(pid)
                killed = True
            for key, _ in selector.select(timeout=max(timeout, 0.05) if not killed else 0.5):
                fd = key.fd
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(fd)
                    os.close(fd)
                    continue
                room = cap - sizes[fd]
                chunks[fd].append(data[: max(room, 0)])
                sizes[fd] += len(data)
                if sizes[fd] > cap and not overflow:
                    overflow = True
                    _kill(pid)
    return {fd: b"".join(parts) for fd, parts in chunks.items()}, overflow, killed


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _result(
    stdout: bytes,
    stderr: bytes,
    report: bytes,
    *,
    overflow: bool,
    killed: bool,
    bwrap_status: int,
    host_wall_s: float,
) -> RunResult:
    exec_errno = _EXEC_ERRNO.search(report)
    match = _REPORT.search(report)
    if match is None:
        # No report: we ended the run (output cap, host deadline), or the box never started.
        box_error = None
        if not (overflow or killed):
            box_error = (
                f"sandbox failed (status {bwrap_status}): {stderr[-500:].decode(errors='replace')}"
            )
        return RunResult(
            exit_code=None, exit_signal=signal.SIGKILL, stdout=stdout, stderr=stderr,
            time_s=host_wall_s, wall_time_s=host_wall_s, memory_kb=0,
            wall_timed_out=killed and not overflow, output_limit_exceeded=overflow,
            box_error=box_error,
        )  # fmt: skip
    status, cpu_us, maxrss_kb, wall_us, timed_out = (int(group) for group in match.groups())
    exit_code = os.waitstatus_to_exitcode(status) if status >= 0 else None
    return RunResult(
        exit_code=exit_code if exit_code is not None and exit_code >= 0 else None,
        exit_signal=-exit_code if exit_code is not None and exit_code < 0 else None,
        stdout=stdout,
        stderr=stderr,
        time_s=cpu_us / 1e6,
        wall_time_s=wall_us / 1e6,
        memory_kb=maxrss_kb,
        wall_timed_out=bool(timed_out),
        output_limit_exceeded=overflow,
        exec_error=os.strerror(int(exec_errno.group(1))) if exec_errno else None,
    )
