"""The JudgeCluster resource as typed objects: its coordinates and its spec.

The API server already applied the CRD's defaults and validation
(charts/kubejudge/crds/judgecluster.yaml); these models give the operator typed access and repeat
the defaults so pure code and unit tests can build a spec from a partial dict.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from kubejudge.scaling import PoolLimits

GROUP = "kubejudge.dev"
VERSION = "v1alpha1"
PLURAL = "judgeclusters"
KIND = "JudgeCluster"
API_VERSION = f"{GROUP}/{VERSION}"


def network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A CIDR as `ipaddress` reads it, host bits allowed (10.1.2.3/8 is 10.0.0.0/8)."""
    if not isinstance(value, str):
        raise ValueError(f"expected a CIDR string such as 10.0.0.0/24, got {value!r}")
    return ipaddress.ip_network(value, strict=False)


Network = Annotated[ipaddress.IPv4Network | ipaddress.IPv6Network, BeforeValidator(network)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")


class SecretRef(Model):
    name: str
    key: str


class Images(Model):
    api: str
    worker: str
    gateway: str
    pull_policy: str = Field(default="IfNotPresent", alias="pullPolicy")


class Store(Model):
    """Redis or PostgreSQL: a managed in-cluster instance, or an external URL in a Secret."""

    managed: bool = False
    url_secret_ref: SecretRef | None = Field(default=None, alias="urlSecretRef")
    image: str | None = None
    storage: str = "1Gi"
    # External only: where worker pods may reach it. Empty: the IP in its URL, when it has one.
    egress_cidrs: list[Network] = Field(default_factory=list, alias="egressCIDRs")


class Frontend(Model):
    replicas: int = 2
    resources: dict[str, Any] = Field(default_factory=dict)


class RateLimit(Model):
    """The api's submission limits; a field left out keeps the api's own default."""

    window_s: int | None = Field(default=None, alias="windowSeconds", ge=1)
    per_user: int | None = Field(default=None, alias="perUser", ge=1)
    # Calls with neither a JWT nor X-Auth-Token, counted per client address; 0 turns it off.
    anonymous_per_address: int | None = Field(default=None, alias="anonymousPerAddress", ge=0)


class Api(Frontend):
    # The ingress or load balancer in front of the api: only from these is X-Forwarded-For
    # believed, so anonymous callers behind it are limited one by one, not as one address.
    trusted_proxies: list[Network] = Field(default_factory=list, alias="trustedProxies")
    rate_limit: RateLimit = Field(default_factory=RateLimit, alias="rateLimit")


class WorkerPool(Model):
    name: str
    languages: list[str]
    min_replicas: int = Field(default=0, alias="minReplicas")
    max_replicas: int = Field(default=10, alias="maxReplicas")
    target_backlog_per_worker: int = Field(default=2, alias="targetBacklogPerWorker")
    concurrency: int = 1
    # Short is safe: a scale-down only ever removes idle workers.
    scale_down_delay_s: int = Field(default=30, alias="scaleDownDelaySeconds")
    resources: dict[str, Any] = Field(default_factory=dict)
    runtime_class_name: str | None = Field(default=None, alias="runtimeClassName")

    @property
    def limits(self) -> PoolLimits:
        return PoolLimits(
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            target_backlog_per_worker=self.target_backlog_per_worker,
            scale_down_delay_s=self.scale_down_delay_s,
        )


class ClusterSpec(Model):
    images: Images
    redis: Store
    postgresql: Store
    jwt_secret_ref: SecretRef = Field(alias="jwtSecretRef")
    auth_token_secret_ref: SecretRef | None = Field(default=None, alias="authTokenSecretRef")
    api: Api = Field(default_factory=Api)
    gateway: Frontend = Field(default_factory=Frontend)
    max_wall_time_s: int = Field(default=60, alias="maxWallTimeSeconds")
    worker_pools: list[WorkerPool] = Field(alias="workerPools", min_length=1)

    @property
    def pools(self) -> dict[str, list[str]]:
        """KUBEJUDGE_POOLS: pool name -> language families, as every role reads it."""
        return {pool.name: list(pool.languages) for pool in self.worker_pools}


class Owner(Model):
    """The JudgeCluster that owns a child: enough to name it, place it and reference it."""

    name: str
    namespace: str
    uid: str

    @classmethod
    def of(cls, body: dict[str, Any]) -> Owner:
        meta = body["metadata"]
        return cls(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"])

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
