"""A worker pool's Deployment, and the pod-deletion cost that makes a scale-down take idle
workers first.

Built without `replicas`: the autoscaler owns that field through the /scale subresource, and
re-applying the manifest must never reset it.
"""

from __future__ import annotations

from typing import Any

from kubejudge.wellknown import SANDBOX_ROOT, WORKER_METRICS_PORT
from kubejudge_operator.resources.meta import labels_of, metadata, selector_labels, worker_name
from kubejudge_operator.resources.pods import app_pod, http_probe, restricted_container_security
from kubejudge_operator.spec import ClusterSpec, Owner, WorkerPool

# Pod stop: the worker drains this long past the max wall time; the kubelet waits longer.
DRAIN_MARGIN_S = 15
GRACE_MARGIN_S = 30
# What the worker process needs to set up each box, and nothing more (images/worker/README.md):
# the box's own mounts happen inside its user namespace, where it needs no capability of ours.
WORKER_CAPABILITIES = (
    "KILL",  # end a box (it runs as another uid) past its wall clock
    "SETGID",  # setpriv: drop to the box's gid, clear supplementary groups
    "SETUID",  # setpriv: drop to the box's uid before bwrap starts
)
# Busy workers get this pod-deletion cost, idle ones 0: the ReplicaSet removes idle pods first.
BUSY_DELETION_COST = 1000
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def worker_container_security() -> dict[str, Any]:
    """Exactly the capabilities the sandbox set-up uses, in the pod's own user namespace."""
    # no_new_privs (allowPrivilegeEscalation: false) holds: the worker only ever lowers its
    # uid, and bwrap runs unprivileged.
    return restricted_container_security() | {
        "capabilities": {"drop": ["ALL"], "add": list(WORKER_CAPABILITIES)},
        # bwrap mounts a fresh /proc in its namespaces; a masked /proc makes that EPERM.
        "procMount": "Unmasked",
    }


def build_worker(owner: Owner, spec: ClusterSpec, pool: WorkerPool) -> dict[str, Any]:
    """A worker pool's Deployment, without `replicas` (the autoscaler's field)."""
    labels = labels_of(owner, "worker", pool.name)
    container = {
        "name": "worker",
        "image": spec.images.worker,
        "args": [
            "worker",
            "--pool",
            pool.name,
            "--concurrency",
            str(pool.concurrency),
            "--metrics-port",
            str(WORKER_METRICS_PORT),
        ],
        "ports": [{"name": "metrics", "containerPort": WORKER_METRICS_PORT}],
        # Every second: a worker judges as soon as it reads the queue, and Ready (what rollouts,
        # the PDB and people watching the pool count) should follow within a second, not five.
        "readinessProbe": http_probe("/readyz", "metrics", period_s=1),
        "livenessProbe": http_probe("/healthz", "metrics", period_s=10),
        "resources": pool.resources,
        "securityContext": worker_container_security(),
        "env": [
            {
                "name": "KUBEJUDGE_DRAIN_TIMEOUT_S",
                "value": str(spec.max_wall_time_s + DRAIN_MARGIN_S),
            }
        ],
        "volumeMounts": [{"name": "sandbox", "mountPath": SANDBOX_ROOT}],
    }
    extra: dict[str, Any] = {
        # A worker drains on SIGTERM: its longest submission gets to finish.
        "terminationGracePeriodSeconds": spec.max_wall_time_s + GRACE_MARGIN_S,
        # The pod's own user namespace: its root (which sets the boxes up) is an unprivileged
        # uid on the node, and its capabilities reach only what that namespace owns.
        "hostUsers": False,
    }
    if pool.runtime_class_name:
        extra["runtimeClassName"] = pool.runtime_class_name
    template = app_pod(owner, spec, labels=labels, container=container, extra=extra)
    template["spec"]["volumes"].append({"name": "sandbox", "emptyDir": {"sizeLimit": "2Gi"}})
    # Container root, on purpose: the worker mounts each work dir and drops to the box uid
    # itself (setpriv), then bwrap runs unprivileged. bubblewrap creates user namespaces and
    # mounts, which the runtime's default seccomp (and AppArmor) profiles refuse; the sandbox
    # sets its own limits inside. See charts/kubejudge/README.md for what each platform needs.
    template["spec"]["securityContext"] = {
        "runAsNonRoot": False,
        "runAsUser": 0,
        "runAsGroup": 0,
        "seccompProfile": {"type": "Unconfined"},
        "appArmorProfile": {"type": "Unconfined"},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, worker_name(owner, pool.name), labels),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner, "worker", pool.name)},
            # Surge only: never take a judging worker away to make room for a new one.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0},
            },
            "template": template,
        },
    }


def deletion_cost(busy: bool) -> str:
    return str(BUSY_DELETION_COST if busy else 0)
