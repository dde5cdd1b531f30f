"""The operator's Prometheus metrics: what each pool has to do, has, and was told to have."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge

from kubejudge.scaling import Decision, Observation, PoolLimits

LABELS = ("namespace", "cluster", "pool")

BACKLOG = Gauge("kubejudge_pool_backlog", "Submissions waiting or being judged", LABELS)
OLDEST_WAITING = Gauge(
    "kubejudge_pool_oldest_waiting_seconds",
    "Age of the oldest submission no worker has started (0 when none waits)",
    LABELS,
)
BUSY = Gauge("kubejudge_pool_busy_workers", "Workers judging at least one submission", LABELS)
DESIRED = Gauge("kubejudge_pool_desired_replicas", "Replicas the policy asked for", LABELS)
CURRENT = Gauge("kubejudge_pool_current_replicas", "Replicas before the decision", LABELS)
MIN = Gauge("kubejudge_pool_min_replicas", "The pool's minReplicas", LABELS)
MAX = Gauge("kubejudge_pool_max_replicas", "The pool's maxReplicas", LABELS)
SCALINGS = Counter(
    "kubejudge_pool_scalings", "Replica changes the autoscaler made", (*LABELS, "direction")
)
DIRECTIONS = ("up", "down")
REDIS_UP = Gauge("kubejudge_operator_redis_up", "1 when the cluster's Redis answered", LABELS[:2])


def record(
    *,
    namespace: str,
    cluster: str,
    pool: str,
    limits: PoolLimits,
    seen: Observation,
    oldest_waiting_ms: int,
    decision: Decision,
) -> None:
    labels = {"namespace": namespace, "cluster": cluster, "pool": pool}
    BACKLOG.labels(**labels).set(seen.backlog)
    OLDEST_WAITING.labels(**labels).set(oldest_waiting_ms / 1000)
    BUSY.labels(**labels).set(seen.busy)
    DESIRED.labels(**labels).set(decision.desired)
    CURRENT.labels(**labels).set(decision.current)
    MIN.labels(**labels).set(limits.min_replicas)
    MAX.labels(**labels).set(limits.max_replicas)
    # Both directions exist from the pool's first poll, at zero: increase() counts only what a
    # series gains after its first scrape, so a direction born at 1 hid the pool's first scale
    # up from the dashboard's scaling-decisions panel.
    scalings = {d: SCALINGS.labels(**labels, direction=d) for d in DIRECTIONS}
    if decision.changed:
        scalings["up" if decision.desired > decision.current else "down"].inc()


def forget(*, namespace: str, cluster: str, pool: str) -> None:
    """Drop a pool's series once the pool (or its JudgeCluster) is gone."""
    for gauge in (BACKLOG, OLDEST_WAITING, BUSY, DESIRED, CURRENT, MIN, MAX):
        with contextlib.suppress(KeyError):
            gauge.remove(namespace, cluster, pool)
    for direction in DIRECTIONS:
        with contextlib.suppress(KeyError):
            SCALINGS.remove(namespace, cluster, pool, direction)
