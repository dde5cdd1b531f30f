"""How a run becomes a Judge0 status: `IsolateJob#determine_status`, in plain functions.

Judge0 checks, in order: time limit (isolate `TO`), fatal signal (`SG`, by signal number),
non-zero exit (`RE`), internal failure (`XX`, Exec Format Error when the program could not
be executed), then compares the output. Outputs match when they are equal after trailing
whitespace is stripped from every line and from the end.
"""

from __future__ import annotations

import signal

from kubejudge.statuses import Status
from kubejudge_worker.sandbox import Limits, RunResult

SIGNAL_STATUS: dict[int, Status] = {
    signal.SIGSEGV: Status.RUNTIME_ERROR_SIGSEGV,
    signal.SIGXFSZ: Status.RUNTIME_ERROR_SIGXFSZ,
    signal.SIGFPE: Status.RUNTIME_ERROR_SIGFPE,
    signal.SIGABRT: Status.RUNTIME_ERROR_SIGABRT,
}


def normalize_output(text: bytes) -> bytes:
    """Judge0's `strip`: rstrip every line, join, rstrip the whole."""
    return b"\n".join(line.rstrip() for line in text.split(b"\n")).rstrip()


def outputs_match(expected: bytes, actual: bytes) -> bool:
    return normalize_output(expected) == normalize_output(actual)


def run_status(result: RunResult, *, limits: Limits, expected: bytes | None) -> Status:
    if result.box_error is not None:
        return Status.INTERNAL_ERROR
    if result.exec_error is not None:
        return Status.EXEC_FORMAT_ERROR
    if result.wall_timed_out or result.time_s > limits.cpu_time_s:
        return Status.TIME_LIMIT_EXCEEDED
    if result.output_limit_exceeded:
        # Judge0's output goes to a file under RLIMIT_FSIZE: too much of it is SIGXFSZ.
        return Status.RUNTIME_ERROR_SIGXFSZ
    if result.exit_signal is not None:
        return SIGNAL_STATUS.get(result.exit_signal, Status.RUNTIME_ERROR_OTHER)
    if result.exit_code != 0:
        return Status.RUNTIME_ERROR_NZEC
    if expected is None or outputs_match(expected, result.stdout):
        return Status.ACCEPTED
    return Status.WRONG_ANSWER


def run_message(result: RunResult, status: Status) -> str | None:
    """isolate's status message, which Judge0 returns as `message`."""
    if result.box_error is not None:
        return result.box_error
    if result.exec_error is not None:
        return f"execve: {result.exec_error}"
    if status is Status.TIME_LIMIT_EXCEEDED:
        return "Wall time limit exceeded" if result.wall_timed_out else "Time limit exceeded"
    if result.output_limit_exceeded:
        return "Output limit exceeded"
    if result.exit_signal is not None:
        return f"Caught fatal signal {result.exit_signal}"
    if result.exit_code:
        return f"Exited with error status {result.exit_code}"
    return None
