"""The api and the gateway: a Deployment each, whose replicas the spec sets."""

from __future__ import annotations

from typing import Any

from kubejudge.wellknown import API_PORT, GATEWAY_PORT
from kubejudge_operator.resources.meta import labels_of, metadata, name_of, selector_labels
from kubejudge_operator.resources.pods import app_pod, http_probe, restricted_container_security
from kubejudge_operator.spec import ClusterSpec, Owner

FRONTEND_PORTS = {"api": API_PORT, "gateway": GATEWAY_PORT}


def build_frontend(owner: Owner, spec: ClusterSpec, component: str) -> dict[str, Any]:
    """The api or the gateway: a Deployment whose replicas the spec sets."""
    frontend = spec.api if component == "api" else spec.gateway
    image = spec.images.api if component == "api" else spec.images.gateway
    container = {
        "name": component,
        "image": image,
        "args": [component],
        "ports": [{"name": "http", "containerPort": FRONTEND_PORTS[component]}],
        "readinessProbe": http_probe("/readyz", "http", period_s=5),
        "livenessProbe": http_probe("/healthz", "http", period_s=10),
        "resources": frontend.resources,
        "securityContext": restricted_container_security(),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner, name_of(owner, component), labels_of(owner, component)),
        "spec": {
            "replicas": frontend.replicas,
            "selector": {"matchLabels": selector_labels(owner, component)},
            "template": app_pod(
                owner, spec, labels=labels_of(owner, component), container=container
            ),
        },
    }
