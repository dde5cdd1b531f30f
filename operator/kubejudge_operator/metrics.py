"""The operator's Prometheus metrics: what each pool has to do, has, and was told to have."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from kubejudge.scaling import Decision, Observation

LABELS = ("namespace", "cluster", "pool")

BACKLOG = Gauge("kubejudge_pool_backlog", "Submissions waiting or being judged", LABELS)
BUSY = Gauge("kubejudge_pool_busy_workers", "Workers judging at least one submission", LABELS)
DESIRED = Gauge("kubejudge_pool_desired_replicas", "Replicas the policy asked for", LABELS)
CURRENT = Gauge("kubejudge_pool_current_replicas", "Replicas before the decision", LABELS)
SCALINGS = Counter(
    "kubejudge_pool_scalings", "Replica changes the autoscaler made", (*LABELS, "direction")
)
REDIS_UP = Gauge("kubejudge_operator_redis_up", "1 when the cluster's Redis answered", LABELS[:2])


def record(
    *, namespace: str, cluster: str, pool: str, seen: Observation, decision: Decision
) -> None:
    labels = {"namespace": namespace, "cluster": cluster, "pool": pool}
    BACKLOG.labels(**labels).set(seen.backlog)
    BUSY.labels(**labels).set(seen.busy)
    DESIRED.labels(**labels).set(decision.desired)
    CURRENT.labels(**labels).set(decision.current)
    if decision.changed:
        direction = "up" if decision.desired > decision.current else "down"
        SCALINGS.labels(**labels, direction=direction).inc()
