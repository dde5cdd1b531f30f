"""Pure builders of a JudgeCluster's children, as plain manifest dicts.

No I/O here: `reconcile` applies what these return. Every child carries the owner reference
(so deleting the JudgeCluster garbage-collects it) and the recommended app.kubernetes.io labels.
Worker Deployments are built without `replicas`: the autoscaler owns that field through the
/scale subresource, and re-applying the manifest must never reset it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from kubejudge.wellknown import API_PORT, GATEWAY_PORT, SANDBOX_ROOT, WORKER_METRICS_PORT
from kubejudge_operator.spec import ClusterSpec, Owner, Store, WorkerPool

# Pod stop: the worker drains this long past the max wall time; the kubelet waits longer.
DRAIN_MARGIN_S = 15
GRACE_MARGIN_S = 30
REDIS_PORT = 6379
POSTGRES_PORT = 5432
# The uid the api and gateway images create (see images/Dockerfile); runAsNonRoot checks it.
KUBEJUDGE_UID = 10001
# What the worker process needs to set up each box, and nothing more (images/worker/README.md):
# the box's own mounts happen inside its user namespace, where it needs no capability of ours.
WORKER_CAPABILITIES = (
    "KILL",  # end a box (it runs as another uid) past its wall clock
    "SETGID",  # setpriv: drop to the box's gid, clear supplementary groups
    "SETUID",  # setpriv: drop to the box's uid before bwrap starts
)
# The managed stores' images (images/Dockerfile targets redis and postgres, Debian's packages,
# tagged with the version they install; `make images` builds them under these names) and the
# fixed uids of their service users. The postgres image takes the official image's POSTGRES_*
# environment and PGDATA.
REDIS_UID = 999
POSTGRES_UID = 70
DEFAULT_REDIS_IMAGE = "kubejudge/redis:7.0.15"
DEFAULT_POSTGRES_IMAGE = "kubejudge/postgres:15.20"
POSTGRES_USER = "kubejudge"
POSTGRES_DB = "kubejudge"
POSTGRES_PASSWORD_KEY = "password"  # noqa: S105 - the key in the Secret, not a password
MANAGED_BY = "kubejudge-operator"
POOL_LABEL = "kubejudge.dev/pool"
CONFIG_HASH_ANNOTATION = "kubejudge.dev/config-hash"
# Busy workers get this pod-deletion cost, idle ones 0: the ReplicaSet removes idle pods first.
BUSY_DELETION_COST = 1000
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


# ---------------------------------------------------------------- names and labels


def name_of(owner: Owner, component: str) -> str:
    return f"{owner.name}-{component}"


def worker_name(owner: Owner, pool: str) -> str:
    return worker_deployment_name(owner.name, pool)


def worker_deployment_name(cluster: str, pool: str) -> str:
    """A pool's worker Deployment, by the JudgeCluster's name (what the load test reads)."""
    return f"{cluster}-worker-{pool}"


def postgres_secret_name(owner: Owner) -> str:
    return f"{owner.name}-postgresql-auth"


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


# ---------------------------------------------------------------- configuration


def redis_url_managed(owner: Owner) -> str:
    return f"redis://{name_of(owner, 'redis')}.{owner.namespace}.svc:{REDIS_PORT}/0"


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


def _secret_env(name: str, ref_name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": ref_name, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def app_env(owner: Owner, spec: ClusterSpec) -> list[dict[str, Any]]:
    """Secrets and the pod name as env vars; the ConfigMap supplies the rest via envFrom."""
    env = [
        {"name": "KUBEJUDGE_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}
    ]
    if spec.redis.url_secret_ref is not None:
        ref = spec.redis.url_secret_ref
        env.append(_secret_env("KUBEJUDGE_REDIS_URL", ref.name, ref.key))
    if spec.postgresql.url_secret_ref is not None:
        ref = spec.postgresql.url_secret_ref
        env.append(_secret_env("KUBEJUDGE_DATABASE_URL", ref.name, ref.key))
    else:
        # $(VAR) expands an earlier variable, so the password never lands in a ConfigMap.
        secret = postgres_secret_name(owner)
        env.append(_secret_env("KUBEJUDGE_POSTGRES_PASSWORD", secret, POSTGRES_PASSWORD_KEY))
        host = f"{name_of(owner, 'postgresql')}.{owner.namespace}.svc:{POSTGRES_PORT}"
        env.append(
            {
                "name": "KUBEJUDGE_DATABASE_URL",
                "value": f"postgresql://{POSTGRES_USER}:$(KUBEJUDGE_POSTGRES_PASSWORD)@{host}"
                f"/{POSTGRES_DB}",
            }
        )
    env.append(
        _secret_env("KUBEJUDGE_JWT_SECRET", spec.jwt_secret_ref.name, spec.jwt_secret_ref.key)
    )
    if spec.auth_token_secret_ref is not None:
        ref = spec.auth_token_secret_ref
        env.append(_secret_env("KUBEJUDGE_AUTH_TOKEN", ref.name, ref.key))
    return env


def config_hash(owner: Owner, spec: ClusterSpec) -> str:
    """Changes whenever the ConfigMap does, so pods that read it roll."""
    payload = json.dumps(config_data(owner, spec), sort_keys=True).encode()
    return hashlib.sha256(payload).hexdigest()[:16]


# ---------------------------------------------------------------- pods


def restricted_container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


def worker_container_security() -> dict[str, Any]:
    """Exactly the capabilities the sandbox set-up uses, in the pod's own user namespace."""
    # no_new_privs (allowPrivilegeEscalation: false) holds: the worker only ever lowers its
    # uid, and bwrap runs unprivileged.
    return restricted_container_security() | {
        "capabilities": {"drop": ["ALL"], "add": list(WORKER_CAPABILITIES)},
        # bwrap mounts a fresh /proc in its namespaces; a masked /proc makes that EPERM.
        "procMount": "Unmasked",
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


def build_frontend(owner: Owner, spec: ClusterSpec, component: str) -> dict[str, Any]:
    """The api or the gateway: a Deployment whose replicas the spec sets."""
    port = API_PORT if component == "api" else GATEWAY_PORT
    frontend = spec.api if component == "api" else spec.gateway
    image = spec.images.api if component == "api" else spec.images.gateway
    container = {
        "name": component,
        "image": image,
        "args": [component],
        "ports": [{"name": "http", "containerPort": port}],
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


# ---------------------------------------------------------------- services and policies


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


def build_pdb(owner: Owner, name: str, selector: dict[str, str], component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, name, labels_of(owner, component)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }


@dataclass(frozen=True)
class Endpoint:
    """Where a store listens, as its URL says: the port, and the address when the URL gives an
    IP literal (a hostname leaves it None: its addresses may change under us)."""

    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None


# The default ports, no address: a managed store's (its pods are picked by label instead).
REDIS_ENDPOINT = Endpoint(REDIS_PORT)
POSTGRES_ENDPOINT = Endpoint(POSTGRES_PORT)


def store_peers(
    owner: Owner, *, store: Store, component: str, endpoint: Endpoint
) -> list[dict[str, Any]]:
    """Where worker pods may reach a store: a managed one's pods; an external one's
    egressCIDRs, else the IP in its URL. Empty: no way to tell, so any address."""
    if store.managed:
        return [{"podSelector": {"matchLabels": selector_labels(owner, component)}}]
    networks = store.egress_cidrs
    if not networks and endpoint.address is not None:
        networks = [ipaddress.ip_network(endpoint.address)]
    return [{"ipBlock": {"cidr": str(network)}} for network in networks]


def store_egress(
    owner: Owner, *, store: Store, component: str, endpoint: Endpoint
) -> dict[str, Any]:
    """The egress rule to one store: its TCP port, at its peers (without `to`, any address)."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": endpoint.port}]}
    if peers := store_peers(owner, store=store, component=component, endpoint=endpoint):
        rule["to"] = peers
    return rule


def open_egress(
    owner: Owner, spec: ClusterSpec, *, redis: Endpoint, postgres: Endpoint
) -> list[str]:
    """One line per store that worker pods may reach on ANY address, saying how to close it."""
    return [
        f"worker egress to {component} (TCP {endpoint.port}) is open to any address: its URL "
        f"gives no IP to pin; list its addresses in spec.{component}.egressCIDRs to close it"
        for component, store, endpoint in (
            ("redis", spec.redis, redis),
            ("postgresql", spec.postgresql, postgres),
        )
        if not store_peers(owner, store=store, component=component, endpoint=endpoint)
    ]


def build_worker_network_policy(
    owner: Owner, spec: ClusterSpec, *, redis: Endpoint, postgres: Endpoint
) -> dict[str, Any]:
    """Worker pods may reach Redis, PostgreSQL and DNS, nothing else; nothing may reach them."""
    dns = {
        "to": [
            {
                "namespaceSelector": {},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(owner, name_of(owner, "worker"), labels_of(owner, "worker")),
        "spec": {
            "podSelector": {
                "matchLabels": {
                    "app.kubernetes.io/instance": owner.name,
                    "app.kubernetes.io/component": "worker",
                }
            },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                store_egress(owner, store=spec.redis, component="redis", endpoint=redis),
                store_egress(
                    owner, store=spec.postgresql, component="postgresql", endpoint=postgres
                ),
                dns,
            ],
        },
    }


# ---------------------------------------------------------------- managed stores


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
                _secret_env(
                    "POSTGRES_PASSWORD", postgres_secret_name(owner), POSTGRES_PASSWORD_KEY
                ),
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


# ---------------------------------------------------------------- everything


def build_children(
    owner: Owner,
    spec: ClusterSpec,
    *,
    redis: Endpoint = REDIS_ENDPOINT,
    postgres: Endpoint = POSTGRES_ENDPOINT,
) -> list[dict[str, Any]]:
    """Every child the operator applies, in an order that lets each find what it needs.

    `redis`/`postgres` are the external instances' endpoints (read from their URLs), so the
    worker NetworkPolicy opens exactly those ports, at those addresses when known.
    """
    children = [build_config_map(owner, spec)]
    for component, store, port in (
        ("redis", spec.redis, REDIS_PORT),
        ("postgresql", spec.postgresql, POSTGRES_PORT),
    ):
        if store.managed:
            children += [build_store(owner, spec, component), build_service(owner, component, port)]
    for component, port in (("api", API_PORT), ("gateway", GATEWAY_PORT)):
        children += [
            build_frontend(owner, spec, component),
            build_service(owner, component, port),
            build_pdb(
                owner, name_of(owner, component), selector_labels(owner, component), component
            ),
        ]
    for pool in spec.worker_pools:
        children += [
            build_worker(owner, spec, pool),
            build_pdb(
                owner,
                worker_name(owner, pool.name),
                selector_labels(owner, "worker", pool.name),
                "worker",
            ),
        ]
    children.append(
        build_worker_network_policy(
            owner,
            spec,
            redis=REDIS_ENDPOINT if spec.redis.managed else redis,
            postgres=POSTGRES_ENDPOINT if spec.postgresql.managed else postgres,
        )
    )
    return children


def deletion_cost(busy: bool) -> str:
    return str(BUSY_DELETION_COST if busy else 0)
