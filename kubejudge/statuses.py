"""Judge0's submission statuses: the ids and descriptions clients depend on, byte for byte."""

from __future__ import annotations

from enum import IntEnum


class Status(IntEnum):
    IN_QUEUE = 1
    PROCESSING = 2
    ACCEPTED = 3
    WRONG_ANSWER = 4
    TIME_LIMIT_EXCEEDED = 5
    COMPILATION_ERROR = 6
    RUNTIME_ERROR_SIGSEGV = 7
    RUNTIME_ERROR_SIGXFSZ = 8
    RUNTIME_ERROR_SIGFPE = 9
    RUNTIME_ERROR_SIGABRT = 10
    RUNTIME_ERROR_NZEC = 11
    RUNTIME_ERROR_OTHER = 12
    INTERNAL_ERROR = 13
    EXEC_FORMAT_ERROR = 14

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self]

    @property
    def is_final(self) -> bool:
        return self not in (Status.IN_QUEUE, Status.PROCESSING)

    def public(self) -> dict[str, int | str]:
        """The `{"id", "description"}` object Judge0 returns."""
        return {"id": int(self), "description": self.description}


DESCRIPTIONS: dict[Status, str] = {
    Status.IN_QUEUE: "In Queue",
    Status.PROCESSING: "Processing",
    Status.ACCEPTED: "Accepted",
    Status.WRONG_ANSWER: "Wrong Answer",
    Status.TIME_LIMIT_EXCEEDED: "Time Limit Exceeded",
    Status.COMPILATION_ERROR: "Compilation Error",
    Status.RUNTIME_ERROR_SIGSEGV: "Runtime Error (SIGSEGV)",
    Status.RUNTIME_ERROR_SIGXFSZ: "Runtime Error (SIGXFSZ)",
    Status.RUNTIME_ERROR_SIGFPE: "Runtime Error (SIGFPE)",
    Status.RUNTIME_ERROR_SIGABRT: "Runtime Error (SIGABRT)",
    Status.RUNTIME_ERROR_NZEC: "Runtime Error (NZEC)",
    Status.RUNTIME_ERROR_OTHER: "Runtime Error (Other)",
    Status.INTERNAL_ERROR: "Internal Error",
    Status.EXEC_FORMAT_ERROR: "Exec Format Error",
}

# Judge0 has no memory-limit status; we report it in an extra field and keep `status` Judge0's.
MEMORY_LIMIT_EXCEEDED = "memory_limit_exceeded"
