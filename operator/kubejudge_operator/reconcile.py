"""Make a JudgeCluster's children match its spec: apply what should exist, delete the rest.

Idempotent and level-based: create, update, resume, the periodic re-apply and a hand-deleted
child all run the same `reconcile_cluster`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import weakref
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kopf

from kubejudge_operator.kube import AUTOSCALER_MANAGER, Kube
from kubejudge_operator.resources.children import build_children
from kubejudge_operator.resources.meta import MANAGED_BY, worker_name
from kubejudge_operator.resources.network import (
    POSTGRES_ENDPOINT,
    REDIS_ENDPOINT,
    Endpoint,
    open_egress,
)
from kubejudge_operator.resources.stores import POSTGRES_PORT, REDIS_PORT, build_postgres_secret
from kubejudge_operator.spec import API_VERSION, KIND, ClusterSpec, Owner, Store

log = logging.getLogger(__name__)
# Per JudgeCluster uid, alive while someone holds or waits for it.
_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

# Kinds the operator applies and prunes (the managed PostgreSQL's Secret is created once and
# kept: its password must outlive a spec change that briefly drops `managed`).
PRUNED_KINDS = (
    "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "StatefulSet",
)  # fmt: skip


async def store_url(kube: Kube, owner: Owner, store: Store, *, managed_url: str) -> str:
    """A store's URL as the operator's pods see it: the managed Service, else the Secret."""
    if store.url_secret_ref is None:
        return managed_url
    ref = store.url_secret_ref
    return await kube.secret_value(owner.namespace, ref.name, ref.key)


def endpoint_of(url: str, default_port: int) -> Endpoint:
    """The port and, when the URL pins one, the IP address a store's URL points at.

    No address when the URL names a host, or several (libpq's `h1:5432,h2:5432`, a `host=`
    parameter), or is no URL at all: the worker policy must never shut out an address the
    client may really use.
    """
    try:
        split = urlsplit(url)
        port = split.port or default_port
    except ValueError:  # a multi-host netloc, or no URL
        return Endpoint(default_port)
    query = parse_qs(split.query)
    if split.hostname is None or "host" in query or "hostaddr" in query:
        return Endpoint(port)
    try:
        address = ipaddress.ip_address(split.hostname)
    except ValueError:  # a hostname
        return Endpoint(port)
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:  # fe80::1%eth0: link-local, no ipBlock for it
            return Endpoint(port)
        # ::ffff:a.b.c.d goes out as IPv4 to a.b.c.d.
        address = address.ipv4_mapped or address
    return Endpoint(port, address)


async def reconcile_cluster(kube: Kube, body: dict[str, Any]) -> list[str]:
    """One reconcile at a time per JudgeCluster: the handlers, the periodic re-apply and a
    restore may all fire together, and two would both create a missing worker Deployment.

    Returns what the applied children leave open (`network.open_egress`), for the caller to
    report."""
    owner = Owner.of(body)
    lock = _locks.setdefault(owner.uid, asyncio.Lock())
    async with lock:
        return await _reconcile(kube, owner, ClusterSpec.model_validate(body["spec"]))


async def _reconcile(kube: Kube, owner: Owner, spec: ClusterSpec) -> list[str]:
    redis, postgres = REDIS_ENDPOINT, POSTGRES_ENDPOINT
    if not spec.redis.managed:
        url = await store_url(kube, owner, spec.redis, managed_url="")
        redis = endpoint_of(url, REDIS_PORT)
    if spec.postgresql.managed:
        password = secrets.token_urlsafe(24)
        await kube.create_if_absent(build_postgres_secret(owner, password))
    else:
        url = await store_url(kube, owner, spec.postgresql, managed_url="")
        postgres = endpoint_of(url, POSTGRES_PORT)

    children = build_children(owner, spec, redis=redis, postgres=postgres)
    pools = {worker_name(owner, pool.name): pool for pool in spec.worker_pools}
    for child in children:
        pool = pools.get(child["metadata"]["name"]) if child["kind"] == "Deployment" else None
        if (
            pool is not None
            and await kube.replicas(owner.namespace, child["metadata"]["name"]) is None
        ):
            await create_worker_deployment(kube, child, pool.min_replicas)
        else:
            await kube.apply(child)
    await prune(kube, owner, children)
    return open_egress(owner, spec, redis=redis, postgres=postgres)


async def create_worker_deployment(kube: Kube, manifest: dict[str, Any], replicas: int) -> None:
    """Create a pool's Deployment at `replicas` and hand that one field to the autoscaler's
    field manager: later applies leave `replicas` out without resetting it, and every other
    field stays the operator's alone (so dropping it from the spec removes it)."""
    await kube.apply(manifest | {"spec": manifest["spec"] | {"replicas": replicas}})
    meta = manifest["metadata"]
    only_replicas = {
        "apiVersion": manifest["apiVersion"],
        "kind": manifest["kind"],
        "metadata": {"name": meta["name"], "namespace": meta["namespace"]},
        "spec": {"replicas": replicas},
    }
    await kube.apply(only_replicas, field_manager=AUTOSCALER_MANAGER)


async def apply_spec(kube: Kube, body: dict[str, Any], patch: kopf.Patch) -> None:
    """Reconcile, then report which generation of the spec the children now reflect."""
    await reconcile_cluster(kube, body)
    patch.status["observedGeneration"] = body["metadata"].get("generation")


async def prune(kube: Kube, owner: Owner, children: list[dict[str, Any]]) -> None:
    """Delete children the spec no longer asks for (a removed pool, a store made external)."""
    wanted = {(child["kind"], child["metadata"]["name"]) for child in children}
    selector = {
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    for kind in PRUNED_KINDS:
        for found in await kube.select(kind, owner.namespace, selector):
            name = found["metadata"]["name"]
            owned = any(
                ref.get("uid") == owner.uid for ref in found["metadata"].get("ownerReferences", [])
            )
            if owned and (kind, name) not in wanted:
                log.info("deleting %s %s/%s: no longer in the spec", kind, owner.namespace, name)
                await kube.delete(kind, owner.namespace, name)


async def restore(kube: Kube, child: dict[str, Any]) -> None:
    """A child was deleted: reconcile its JudgeCluster, unless that is going away too."""
    meta = child.get("metadata", {})
    for ref in meta.get("ownerReferences", []):
        if ref.get("apiVersion") != API_VERSION or ref.get("kind") != KIND:
            continue
        owner = await kube.get(KIND, meta["namespace"], ref["name"])
        alive = owner is not None and "deletionTimestamp" not in owner["metadata"]
        if alive and owner["metadata"]["uid"] == ref.get("uid"):
            log.info("restoring %s %s/%s", child.get("kind"), meta["namespace"], meta["name"])
            await reconcile_cluster(kube, owner)
