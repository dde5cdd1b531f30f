"""Judge0's queue-full check (503 when backlog + n > max_queue_size) without a Redis round
trip on every submission.

Each pool's backlog is read from Redis at most every `REFRESH_S`, and this process adds what
it enqueued since. Far from the limit a slightly stale figure cannot change the answer; once
the estimate comes within `EXACT_MARGIN` of the limit every check reads Redis again, so the
limit itself is enforced exactly (as exactly as Judge0, whose check is not atomic either).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis.asyncio import Redis

from kubejudge import queue

REFRESH_S = 0.1
EXACT_MARGIN = 0.9  # read Redis whenever the estimate passes 90 % of the limit


@dataclass
class _Reading:
    total: int
    at: float


class Backpressure:
    def __init__(self, redis: Redis, *, max_queue_size: int) -> None:
        self._redis = redis
        self._max = max_queue_size
        self._readings: dict[str, _Reading] = {}

    async def full(self, pool: str, n: int) -> bool:
        """Would `n` more submissions overflow `pool`'s queue?"""
        reading = self._readings.get(pool)
        now = time.monotonic()
        stale = reading is None or now - reading.at > REFRESH_S
        if stale or reading.total + n > self._max * EXACT_MARGIN:
            backlog = await queue.backlog(self._redis, pool)
            reading = self._readings[pool] = _Reading(total=backlog.total, at=now)
        return reading.total + n > self._max

    def enqueued(self, pool: str, n: int = 1) -> None:
        """Count our own enqueues until the next reading."""
        reading = self._readings.get(pool)
        if reading is not None:
            reading.total += n
