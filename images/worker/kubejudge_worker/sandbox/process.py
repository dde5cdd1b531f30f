"""One sandboxed run: ask a box server for it, feed stdin, collect capped output and the report.

Blocking by design: the worker calls it in a thread. stdin comes from a memfd, so a program
that never reads cannot stall us; stdout, stderr and the report come back on pipes, the
only way anything from the box reaches the host. A run that passes the output cap, or that
A run that passes the output cap is cancelled (boxd kills it and reports); one that boxd's
own wall clock fails to end is ended by killing its whole box server.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import time
from dataclasses import dataclass, replace

from kubejudge_worker.sandbox.limits import Limits, RunResult
from kubejudge_worker.sandbox.server import BoxServer, BoxServerError

HOST_GRACE_S = 2.0  # beyond the wall limit, before the host kills the box itself
_REPORT = re.compile(
    rb"status=(-?\d+) cpu_us=(\d+) maxrss_kb=(\d+) wall_us=(\d+) timed_out=([01])"
    rb" memory_exceeded=([01])\n"
)
_EXEC_ERRNO = re.compile(rb"exec_errno=(\d+)\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRequest:
    command: list[str]
    env: dict[str, str]
    stdin: bytes
    limits: Limits
    watch_memory: bool  # no memory cgroup: boxd limits all of the run's memory, else sockets
    writable: bool  # compile writes into /box; test runs see it read-only
    merge_stderr: bool  # Judge0's redirect_stderr_to_stdout
    scratch_bytes: int  # size of the run's /tmp and /dev/shm

    def fields(self) -> list[bytes]:
        """The `run` request of boxd's protocol."""
        limits = self.limits
        cpu_ms = round((limits.cpu_time_s + limits.cpu_extra_time_s) * 1000)
        fields = [
            "run",
            str(max(1, round(limits.wall_time_s * 1000))),
            str(max(1, cpu_ms)),
            str(limits.memory_kb),
            "all" if self.watch_memory else "sockets",
            "1" if self.writable else "0",
            str(self.scratch_bytes),
            ",".join(f"{name}={value}" for name, value in limits.rlimits().items()),
            str(len(self.env)),
            *(f"{name}={value}" for name, value in self.env.items()),
            *self.command,
        ]
        return [field.encode() for field in fields]


def run(server: BoxServer, request: RunRequest) -> RunResult:
    stdin_fd = os.memfd_create("stdin", os.MFD_CLOEXEC)
    os.write(stdin_fd, request.stdin)
    os.lseek(stdin_fd, 0, os.SEEK_SET)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    rep_r, rep_w = os.pipe2(os.O_CLOEXEC)
    cancel_r, cancel_w = os.pipe2(os.O_CLOEXEC)  # closing cancel_w ends the run
    started = time.monotonic()
    cgroup = server.cgroup
    cpu_usage = cgroup.open_cpu_usage() if cgroup is not None else None
    try:
        if cgroup is not None:
            cgroup.start_run(request.limits.memory_kb * 1024)
        stderr_w = out_w if request.merge_stderr else err_w
        fds = [stdin_fd, out_w, stderr_w, rep_w, cancel_r]
        server.request(request.fields(), fds=fds if cpu_usage is None else [*fds, cpu_usage])
    except OSError:
        for fd in (out_r, err_r, rep_r, cancel_w):
            os.close(fd)
        raise
    finally:
        for fd in (stdin_fd, out_w, err_w, rep_w, cancel_r):  # the box holds its own copies
            os.close(fd)
        if cpu_usage is not None:
            os.close(cpu_usage)
    deadline = started + request.limits.wall_time_s + HOST_GRACE_S
    cancel = _Cancel(cancel_w)
    try:
        streams, overflow, killed = _collect(
            server, {out_r: b"", err_r: b"", rep_r: b""}, request.limits.output_limit_bytes,
            deadline=deadline, cancel=cancel,
        )  # fmt: skip
    finally:
        cancel()
    box_error = None
    if not killed:
        try:
            server.reply()
        except BoxServerError as error:
            box_error = f"sandbox failed: {error}: {streams[err_r][-500:].decode(errors='replace')}"
    wall = time.monotonic() - started
    result = _result(
        streams[out_r], streams[err_r], streams[rep_r],
        overflow=overflow, killed=killed, box_error=box_error, host_wall_s=wall,
    )  # fmt: skip
    if cgroup is not None and server.alive:
        oom_killed = cgroup.oom_killed()
        if oom_killed and result.box_error is not None:
            # The OOM killer picked the run's init itself: the program's doing, not the box's.
            result = replace(result, box_error=None, time_s=result.wall_time_s)
        # The cgroup's charge leaves out socket buffers, which boxd counted (`memory_kb`).
        memory_kb = cgroup.peak_kb() + result.memory_kb
        exceeded = oom_killed or result.memory_limit_exceeded
        return replace(
            result,
            memory_kb=memory_kb,
            memory_limit_exceeded=exceeded or memory_kb > request.limits.memory_kb,
        )
    exceeded = result.memory_limit_exceeded or result.memory_kb > request.limits.memory_kb
    return replace(result, memory_limit_exceeded=exceeded)


class _Cancel:
    """Closes the host's end of a run's cancel pipe, once: boxd then ends the run."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def __call__(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _collect(
    server: BoxServer,
    streams: dict[int, bytes],
    cap: int,
    *,
    deadline: float,
    cancel: _Cancel,
) -> tuple[dict[int, bytes], bool, bool]:
    """Read every stream to EOF; cancel the run if one passes `cap`, kill the box if the
    deadline passes."""
    overflow = killed = False
    chunks: dict[int, list[bytes]] = {fd: [] for fd in streams}
    sizes = dict.fromkeys(streams, 0)
    with selectors.DefaultSelector() as selector:
        for fd in streams:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            timeout = deadline - time.monotonic()
            if timeout <= 0 and not killed:
                server.kill()
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
                    cancel()
    return {fd: b"".join(parts) for fd, parts in chunks.items()}, overflow, killed


def _result(
    stdout: bytes,
    stderr: bytes,
    report: bytes,
    *,
    overflow: bool,
    killed: bool,
    box_error: str | None,
    host_wall_s: float,
) -> RunResult:
    exec_errno = _EXEC_ERRNO.search(report)
    match = _REPORT.search(report)
    if match is None or box_error is not None:
        # No report: we ended the run (output cap, host deadline), or the box failed.
        if box_error is None and not (overflow or killed):
            box_error = f"sandbox failed: no report: {stderr[-500:].decode(errors='replace')}"
        return RunResult(
            exit_code=None, exit_signal=signal.SIGKILL, stdout=stdout, stderr=stderr,
            time_s=host_wall_s, wall_time_s=host_wall_s, memory_kb=0,
            wall_timed_out=killed and not overflow, output_limit_exceeded=overflow,
            box_error=box_error,
        )  # fmt: skip
    status, cpu_us, maxrss_kb, wall_us, timed_out, memory_exceeded = (
        int(group) for group in match.groups()
    )
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
        memory_limit_exceeded=bool(memory_exceeded),
        exec_error=os.strerror(int(exec_errno.group(1))) if exec_errno else None,
    )
