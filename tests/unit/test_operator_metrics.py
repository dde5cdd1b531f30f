"""The operator's pool metrics: a pool's scaling counters exist at zero from its first poll, so
the dashboard's increase() counts the pool's first scale up (a series born at 1 hides it)."""

from __future__ import annotations

from kubejudge_operator import metrics
from prometheus_client import REGISTRY

from kubejudge.scaling import Decision, Observation, PoolLimits

LIMITS = PoolLimits(
    min_replicas=0, max_replicas=4, target_backlog_per_worker=1, scale_down_delay_s=5
)
POOL = {"namespace": "contest", "cluster": "judge", "pool": "metrics-test"}


def scalings(direction: str) -> float | None:
    return REGISTRY.get_sample_value(
        "kubejudge_pool_scalings_total", POOL | {"direction": direction}
    )


def test_both_scaling_directions_start_at_zero_and_count_each_change() -> None:
    idle = Observation(waiting=0, pending=0, busy=0, current=0)
    metrics.record(
        **POOL, limits=LIMITS, seen=idle, oldest_waiting_ms=0,
        decision=Decision(current=0, desired=0, need=0, reason="idle"),
    )  # fmt: skip
    assert (scalings("up"), scalings("down")) == (0.0, 0.0)
    busy = Observation(waiting=3, pending=0, busy=0, current=0)
    metrics.record(
        **POOL, limits=LIMITS, seen=busy, oldest_waiting_ms=1500,
        decision=Decision(current=0, desired=3, need=3, reason="backlog"),
    )  # fmt: skip
    assert (scalings("up"), scalings("down")) == (1.0, 0.0)
    assert REGISTRY.get_sample_value("kubejudge_pool_oldest_waiting_seconds", POOL) == 1.5


def test_a_forgotten_pool_leaves_no_series_behind() -> None:
    pool = POOL | {"pool": "metrics-forget"}
    idle = Observation(waiting=0, pending=0, busy=0, current=0)
    metrics.record(
        **pool, limits=LIMITS, seen=idle, oldest_waiting_ms=0,
        decision=Decision(current=0, desired=0, need=0, reason="idle"),
    )  # fmt: skip
    metrics.forget(**pool)
    left = [
        sample
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("pool") == "metrics-forget"
    ]
    assert left == []
