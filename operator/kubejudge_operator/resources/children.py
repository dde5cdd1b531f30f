"""Every child the operator applies for one JudgeCluster, in order."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.resources.budgets import build_pdb
from kubejudge_operator.resources.config import build_config_map
from kubejudge_operator.resources.frontends import FRONTEND_PORTS, build_frontend
from kubejudge_operator.resources.meta import name_of, selector_labels, worker_name
from kubejudge_operator.resources.network import (
    POSTGRES_ENDPOINT,
    REDIS_ENDPOINT,
    Endpoint,
    build_worker_network_policy,
)
from kubejudge_operator.resources.services import build_service
from kubejudge_operator.resources.stores import POSTGRES_PORT, REDIS_PORT, build_store
from kubejudge_operator.resources.workers import build_worker
from kubejudge_operator.spec import ClusterSpec, Owner


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
    for component, port in FRONTEND_PORTS.items():
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
