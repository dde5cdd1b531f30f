"""What every child carries: its name, the recommended app.kubernetes.io labels and the owner
reference (so deleting the JudgeCluster garbage-collects it)."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.spec import Owner

MANAGED_BY = "kubejudge-operator"
POOL_LABEL = "kubejudge.dev/pool"


def name_of(owner: Owner, component: str) -> str:
    return f"{owner.name}-{component}"


def worker_name(owner: Owner, pool: str) -> str:
    return worker_deployment_name(owner.name, pool)


def worker_deployment_name(cluster: str, pool: str) -> str:
    """A pool's worker Deployment, by the JudgeCluster's name (what the load test reads)."""
    return f"{cluster}-worker-{pool}"


def selector_labels(owner: Owner, component: str, pool: str | None = None) -> dict[str, str]:
    labels = {
        "app.kubernetes.io/name": "kubejudge",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": component,
    }
    if pool is not None:
        labels[POOL_LABEL] = pool
    return labels


def labels_of(owner: Owner, component: str, pool: str | None = None) -> dict[str, str]:
    return selector_labels(owner, component, pool) | {
        "app.kubernetes.io/part-of": "kubejudge",
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def metadata(owner: Owner, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels,
        "ownerReferences": [owner.reference()],
    }


def secret_env(name: str, ref_name: str, key: str) -> dict[str, Any]:
    """A container env var read from one key of a Secret."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref_name, "key": key}}}
