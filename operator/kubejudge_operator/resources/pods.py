"""The pod template the api, gateway and workers share."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.resources.config import CONFIG_HASH_ANNOTATION, app_env, config_hash
from kubejudge_operator.resources.meta import name_of
from kubejudge_operator.spec import ClusterSpec, Owner

# The uid the api and gateway images create (see images/Dockerfile); runAsNonRoot checks it.
KUBEJUDGE_UID = 10001


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def http_probe(path: str, port: str, *, period_s: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": period_s, "timeoutSeconds": 2}


def app_pod(
    owner: Owner,
    spec: ClusterSpec,
    *,
    labels: dict[str, str],
    container: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod template for api, gateway and workers: non-root (workers override that, see
    `build_worker`), no service-account token."""
    container = container | {
        "imagePullPolicy": spec.images.pull_policy,
        "envFrom": [{"configMapRef": {"name": name_of(owner, "config")}}],
        "env": app_env(owner, spec) + container.get("env", []),
        # The root filesystem is read-only; scratch space (the sandbox's work dirs) is per pod.
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
            *container.get("volumeMounts", []),
        ],
    }
    return {
        "metadata": {
            "labels": labels,
            "annotations": {CONFIG_HASH_ANNOTATION: config_hash(owner, spec)},
        },
        "spec": {
            # None of our processes talks to the Kubernetes API; workers must not be able to.
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": KUBEJUDGE_UID,
                "runAsGroup": KUBEJUDGE_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
        }
        | (extra or {}),
    }
