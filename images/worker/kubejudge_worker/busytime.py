"""How long this worker's slots have been judging, for the heartbeat's `busy_ms`.

A slot counts from the moment a delivery is handed to it until its task ends (claim, judge,
record, ack), so a worker that takes one submission after another reads as busy all along.
"""

from __future__ import annotations

import time
from collections.abc import Hashable


class BusyTime:
    def __init__(self) -> None:
        self._done_ns = 0
        self._running: dict[Hashable, int] = {}  # task -> monotonic start, ns

    def started(self, task: Hashable) -> None:
        self._running[task] = time.monotonic_ns()

    def finished(self, task: Hashable) -> None:
        began = self._running.pop(task, None)
        if began is not None:
            self._done_ns += time.monotonic_ns() - began

    def total_ms(self) -> int:
        now = time.monotonic_ns()
        running = sum(now - began for began in self._running.values())
        return (self._done_ns + running) // 1_000_000
