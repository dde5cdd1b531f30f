"""The managed stores: a one-replica StatefulSet each for Redis (AOF on) and PostgreSQL, and
the PostgreSQL password's Secret. Also where every role finds them (ports, user, database)."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.resources.meta import (
    labels_of,
    metadata,
    name_of,
    secret_env,
    selector_labels,
)
from kubejudge_operator.spec import ClusterSpec, Owner

REDIS_PORT = 6379
POSTGRES_PORT = 5432
# The managed stores' images (images/Dockerfile targets redis and postgres, Debian's packages,
# tagged with the version they install; `make images` builds them under these names, reading
# them from this file) and the fixed uids of their service users. The postgres image takes the
# official image's POSTGRES_* environment and PGDATA.
REDIS_UID = 999
POSTGRES_UID = 70
DEFAULT_REDIS_IMAGE = "kubejudge/redis:7.0.15"
DEFAULT_POSTGRES_IMAGE = "kubejudge/postgres:15.20"
POSTGRES_USER = "kubejudge"
POSTGRES_DB = "kubejudge"
POSTGRES_PASSWORD_KEY = "password"  # noqa: S105 - the key in the Secret, not a password


def postgres_secret_name(owner: Owner) -> str:
    return f"{owner.name}-postgresql-auth"


def redis_url_managed(owner: Owner) -> str:
    return f"redis://{name_of(owner, 'redis')}.{owner.namespace}.svc:{REDIS_PORT}/0"


def postgres_host_managed(owner: Owner) -> str:
    """The managed PostgreSQL's host:port, as pods in the cluster reach it."""
    return f"{name_of(owner, 'postgresql')}.{owner.namespace}.svc:{POSTGRES_PORT}"


def build_store(owner: Owner, spec: ClusterSpec, component: str) -> dict[str, Any]:
    """A one-replica StatefulSet for the managed Redis (AOF on) or PostgreSQL."""
    store = spec.redis if component == "redis" else spec.postgresql
    if component == "redis":
        port, uid, mount = REDIS_PORT, REDIS_UID, "/data"
        container: dict[str, Any] = {
            "image": store.image or DEFAULT_REDIS_IMAGE,
            "args": ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 5},
        }
    else:
        port, uid, mount = POSTGRES_PORT, POSTGRES_UID, "/var/lib/postgresql/data"
        container = {
            "image": store.image or DEFAULT_POSTGRES_IMAGE,
            "env": [
                {"name": "POSTGRES_USER", "value": POSTGRES_USER},
                {"name": "POSTGRES_DB", "value": POSTGRES_DB},
                {"name": "PGDATA", "value": f"{mount}/pgdata"},
                secret_env("POSTGRES_PASSWORD", postgres_secret_name(owner), POSTGRES_PASSWORD_KEY),
            ],
            "readinessProbe": {
                "exec": {"command": ["pg_isready", "-U", POSTGRES_USER]},
                "periodSeconds": 5,
            },
        }
    labels = labels_of(owner, component)
    container |= {
        "name": component,
        "ports": [{"name": "tcp", "containerPort": port}],
        "volumeMounts": [{"name": "data", "mountPath": mount}],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(owner, name_of(owner, component), labels),
        "spec": {
            "serviceName": name_of(owner, component),
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(owner, component)},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": uid,
                        "runAsGroup": uid,
                        "fsGroup": uid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data", "labels": labels},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": store.storage}},
                    },
                }
            ],
        },
    }


def build_postgres_secret(owner: Owner, password: str) -> dict[str, Any]:
    """Created once (never re-applied): the password must not change under the database."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(owner, postgres_secret_name(owner), labels_of(owner, "postgresql")),
        "type": "Opaque",
        "stringData": {POSTGRES_PASSWORD_KEY: password},
    }
