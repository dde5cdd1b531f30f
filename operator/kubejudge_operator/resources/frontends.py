"""The api and the gateway: a Deployment each, whose replicas the spec sets."""

from __future__ import annotations

import json
from typing import Any

from kubejudge.wellknown import API_PORT, GATEWAY_PORT
from kubejudge_operator.resources.meta import labels_of, metadata, name_of, selector_labels
from kubejudge_operator.resources.pods import app_pod, http_probe, restricted_container_security
from kubejudge_operator.spec import ClusterSpec, Owner

FRONTEND_PORTS = {"api": API_PORT, "gateway": GATEWAY_PORT}


def api_env(spec: ClusterSpec) -> list[dict[str, str]]:
    """What only the api reads: its trusted proxies and the rate limits the spec sets."""
    api = spec.api
    settings: dict[str, object] = {
        "KUBEJUDGE_RATE_LIMIT_WINDOW_S": api.rate_limit.window_s,
        "KUBEJUDGE_RATE_LIMIT_SUBMISSIONS": api.rate_limit.per_user,
        "KUBEJUDGE_RATE_LIMIT_ANONYMOUS_SUBMISSIONS": api.rate_limit.anonymous_per_address,
    }
    if api.trusted_proxies:
        settings["KUBEJUDGE_TRUSTED_PROXIES"] = json.dumps([str(n) for n in api.trusted_proxies])
    return [
        {"name": name, "value": str(value)} for name, value in settings.items() if value is not None
    ]


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
        "env": api_env(spec) if component == "api" else [],
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
