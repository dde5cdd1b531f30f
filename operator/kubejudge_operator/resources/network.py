"""The worker pods' NetworkPolicy: their stores and DNS, nothing else, and nothing in."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from kubejudge_operator.resources.meta import labels_of, metadata, name_of, selector_labels
from kubejudge_operator.resources.stores import POSTGRES_PORT, REDIS_PORT
from kubejudge_operator.spec import ClusterSpec, Owner, Store


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
