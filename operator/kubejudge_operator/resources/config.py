"""The ConfigMap of non-secret settings, and the env every app pod (api, gateway, workers) reads
beside it: Secrets and the pod's name."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from kubejudge_operator.resources.meta import labels_of, metadata, name_of, secret_env
from kubejudge_operator.resources.stores import (
    POSTGRES_DB,
    POSTGRES_PASSWORD_KEY,
    POSTGRES_USER,
    postgres_host_managed,
    postgres_secret_name,
    redis_url_managed,
)
from kubejudge_operator.spec import ClusterSpec, Owner

CONFIG_HASH_ANNOTATION = "kubejudge.dev/config-hash"


def config_data(owner: Owner, spec: ClusterSpec) -> dict[str, str]:
    """The non-secret settings every role reads, as KUBEJUDGE_* variables."""
    data = {"KUBEJUDGE_POOLS": json.dumps(spec.pools, sort_keys=True)}
    if spec.redis.managed:
        data["KUBEJUDGE_REDIS_URL"] = redis_url_managed(owner)
    return data


def build_config_map(owner: Owner, spec: ClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(owner, name_of(owner, "config"), labels_of(owner, "config")),
        "data": config_data(owner, spec),
    }


def config_hash(owner: Owner, spec: ClusterSpec) -> str:
    """Changes whenever the ConfigMap does, so pods that read it roll."""
    payload = json.dumps(config_data(owner, spec), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def app_env(owner: Owner, spec: ClusterSpec) -> list[dict[str, Any]]:
    """Secrets and the pod name as env vars; the ConfigMap supplies the rest via envFrom."""
    env = [
        {"name": "KUBEJUDGE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    if spec.redis.url_secret_ref is not None:
        ref = spec.redis.url_secret_ref
        env.append(secret_env("KUBEJUDGE_REDIS_URL", ref.name, ref.key))
    if spec.postgresql.url_secret_ref is not None:
        ref = spec.postgresql.url_secret_ref
        env.append(secret_env("KUBEJUDGE_DATABASE_URL", ref.name, ref.key))
    else:
        # $(VAR) expands an earlier variable, so the password never lands in a ConfigMap.
        secret = postgres_secret_name(owner)
        env.append(secret_env("KUBEJUDGE_POSTGRES_PASSWORD", secret, POSTGRES_PASSWORD_KEY))
        env.append(
            {
                "name": "KUBEJUDGE_DATABASE_URL",
                "value": f"postgresql://{POSTGRES_USER}:$(KUBEJUDGE_POSTGRES_PASSWORD)"
                f"@{postgres_host_managed(owner)}/{POSTGRES_DB}",
            }
        )
    env.append(
        secret_env("KUBEJUDGE_JWT_SECRET", spec.jwt_secret_ref.name, spec.jwt_secret_ref.key)
    )
    if spec.auth_token_secret_ref is not None:
        ref = spec.auth_token_secret_ref
        env.append(secret_env("KUBEJUDGE_AUTH_TOKEN", ref.name, ref.key))
    return env
