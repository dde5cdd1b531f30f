"""Each worker pool as people watch it: backlog, live and busy workers, and what its autoscaler
wants. The gateway pushes it to every page; the load test plots the same busy figure.

`busy` is derived, not sampled: a heartbeat's `tokens` is an instant, and a worker that judges
one submission after another has an empty list for a moment between any two, so instant samples
of a worker busy all along read 0 or 1 at random. Each heartbeat carries `busy_ms` (slot time
spent judging since the worker started); two readings give the mean busy slots in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError
from redis.asyncio import Redis

from kubejudge import poolload, protocol

# Long enough to outlive a few polls (about 1 s apart), short enough that a stopped autoscaler's
# last word disappears from the page.
SCALING_RECORD_TTL_MS = 10_000


@dataclass
class BusyMeter:
    """Mean busy slots per worker between its last two distinct heartbeats."""

    _last: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (at_ms, busy_ms)
    _rate: dict[str, float] = field(default_factory=dict)

    def busy(self, workers: tuple[protocol.Heartbeat, ...]) -> float:
        """Busy slots over `workers`; a worker seen once counts its instant state."""
        total = 0.0
        for worker in workers:
            previous = self._last.get(worker.worker_id)
            if previous is not None and worker.at_ms > previous[0]:
                spent = worker.busy_ms - previous[1]
                rate = spent / (worker.at_ms - previous[0])
                self._rate[worker.worker_id] = min(max(rate, 0.0), float(worker.concurrency))
            if previous is None or worker.at_ms > previous[0]:
                self._last[worker.worker_id] = (worker.at_ms, worker.busy_ms)
            total += self._rate.get(worker.worker_id, float(len(worker.tokens)))
        gone = self._last.keys() - {worker.worker_id for worker in workers}
        for worker_id in gone:
            del self._last[worker_id]
            self._rate.pop(worker_id, None)
        return total


async def record_decision(
    redis: Redis, *, pool: str, desired: int, current: int, reason: str
) -> None:
    """What an autoscaler decided this poll, for the page (not read by any scaler)."""
    record = protocol.ScalingRecord(pool=pool, desired=desired, current=current, reason=reason)
    await redis.set(
        protocol.scaling_record(pool), record.model_dump_json(), px=SCALING_RECORD_TTL_MS
    )


async def read_decision(redis: Redis, pool: str) -> protocol.ScalingRecord | None:
    raw = await redis.get(protocol.scaling_record(pool))
    if raw is None:
        return None
    try:
        return protocol.ScalingRecord.model_validate_json(raw)
    except ValidationError:
        return None


@dataclass
class PoolWatcher:
    """Reads every pool's state; keeps one BusyMeter per pool across readings."""

    pools: list[str]
    meters: dict[str, BusyMeter] = field(default_factory=dict)

    async def read(self, redis: Redis) -> list[protocol.PoolState]:
        states = []
        for pool in self.pools:
            load = await poolload.observe(redis, pool)
            decision = await read_decision(redis, pool)
            meter = self.meters.setdefault(pool, BusyMeter())
            states.append(
                protocol.PoolState(
                    pool=pool,
                    waiting=load.backlog.waiting,
                    in_flight=load.backlog.pending,
                    live=len(load.workers),
                    busy=round(meter.busy(load.workers), 1),
                    wanted=decision.desired if decision else None,
                    reason=decision.reason if decision else None,
                )
            )
        return states
