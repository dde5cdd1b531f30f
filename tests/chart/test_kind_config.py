"""kind-config.yaml: a valid kind v1alpha4 Cluster (the fields kind's config types accept) that
enables what the worker pods need."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

KIND_CONFIG = Path(__file__).resolve().parents[2] / "kind-config.yaml"

# From sigs.k8s.io/kind pkg/apis/config/v1alpha4/types.go (Cluster, Node, Networking, Mount,
# PortMapping): kind rejects unknown fields, so this schema does too.
NODE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["role"],
    "properties": {
        "role": {"enum": ["control-plane", "worker"]},
        "image": {
            "type": "string",
            "pattern": r"^kindest/node:v1\.\d+\.\d+(@sha256:[0-9a-f]{64})?$",
        },
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "extraMounts": {"type": "array"},
        "extraPortMappings": {"type": "array"},
        "kubeadmConfigPatches": {"type": "array", "items": {"type": "string"}},
        "kubeadmConfigPatchesJSON6902": {"type": "array"},
    },
}
CLUSTER = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "apiVersion"],
    "properties": {
        "kind": {"const": "Cluster"},
        "apiVersion": {"const": "kind.x-k8s.io/v1alpha4"},
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "featureGates": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "runtimeConfig": {"type": "object", "additionalProperties": {"type": "string"}},
        "networking": {"type": "object"},
        "nodes": {"type": "array", "minItems": 1, "items": NODE},
        "kubeadmConfigPatches": {"type": "array", "items": {"type": "string"}},
        "containerdConfigPatches": {"type": "array", "items": {"type": "string"}},
    },
}


def test_kind_config_is_a_valid_cluster() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    jsonschema.validate(config, CLUSTER)
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1 and "worker" in roles
    images = {node["image"] for node in config["nodes"]}
    assert len(images) == 1, "every node on the same Kubernetes version"


def test_kind_config_enables_user_namespaces_for_workers() -> None:
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert config["featureGates"]["UserNamespacesSupport"] is True
    (image,) = {node["image"] for node in config["nodes"]}
    minor = int(image.split(":v1.")[1].split(".")[0])
    assert minor >= 33, "hostUsers: false is on by default from Kubernetes 1.33"
