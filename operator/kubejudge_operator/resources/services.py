"""A component's Service: one TCP port, the same on the pods."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.resources.meta import labels_of, metadata, name_of, selector_labels
from kubejudge_operator.spec import Owner


def build_service(owner: Owner, component: str, port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(owner, name_of(owner, component), labels_of(owner, component)),
        "spec": {
            "selector": selector_labels(owner, component),
            "ports": [{"name": "tcp", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }
