"""The load test's view of the judge over time: backlog and live/busy workers from Redis,
desired/current workers from the JudgeCluster's status (what the operator decided), and ready
worker pods from each pool's Deployment (what the cluster delivered)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from kubejudge import poolview, protocol

log = logging.getLogger("kubejudge_dev.loadtest")

JUDGECLUSTER = ("kubejudge.dev", "v1alpha1", "judgeclusters")


@dataclass(frozen=True, slots=True)
class ClusterRef:
    namespace: str
    name: str
    kubeconfig: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    at_ms: int
    backlog: dict[str, int] = field(default_factory=dict)  # per pool: waiting + pending
    live_workers: int | None = None  # heartbeats not yet expired
    busy_workers: float | None = None  # mean busy slots since the previous sample
    desired: dict[str, int] = field(default_factory=dict)  # per pool, from the JudgeCluster
    current: dict[str, int] = field(default_factory=dict)
    ready: dict[str, int] = field(default_factory=dict)  # per pool, the Deployment's ready pods


async def redis_view(redis: Redis, watcher: poolview.PoolWatcher) -> dict[str, Any]:
    """Backlog per pool, live workers, and busy workers derived from their busy time since
    the previous sample (kubejudge.poolview), so the plot shows a worker busy all along as 1."""
    states = await watcher.read(redis)
    return {
        "backlog": {state.pool: state.waiting + state.in_flight for state in states},
        "live_workers": sum(state.live for state in states),
        "busy_workers": sum(state.busy for state in states),
    }


@dataclass(frozen=True, slots=True)
class ClusterApis:
    custom: Any
    apps: Any


def cluster_view(apis: ClusterApis, ref: ClusterRef) -> dict[str, dict[str, int]]:
    """Per pool desired and current replicas from the JudgeCluster's status, and ready pods
    from the pool's Deployment (blocking calls)."""
    from kubejudge_operator.resources.meta import worker_deployment_name

    group, version, plural = JUDGECLUSTER
    body = apis.custom.get_namespaced_custom_object(group, version, ref.namespace, plural, ref.name)
    pools = (body.get("status") or {}).get("pools") or {}
    if isinstance(pools, list):  # [{name: ..., desired: ...}] or {name: {desired: ...}}
        pools = {pool.get("name", str(i)): pool for i, pool in enumerate(pools)}
    desired = {name: int(pool.get("desired", 0)) for name, pool in pools.items()}
    current = {name: int(pool.get("current", 0)) for name, pool in pools.items()}
    ready: dict[str, int] = {}
    for name in pools:
        deployment = apis.apps.read_namespaced_deployment(
            worker_deployment_name(ref.name, name), ref.namespace
        )
        ready[name] = deployment.status.ready_replicas or 0
    return {"desired": desired, "current": current, "ready": ready}


def cluster_pools(apis: ClusterApis, ref: ClusterRef) -> list[str]:
    """The worker pools the JudgeCluster's spec names (a blocking call)."""
    group, version, plural = JUDGECLUSTER
    body = apis.custom.get_namespaced_custom_object(group, version, ref.namespace, plural, ref.name)
    return [pool["name"] for pool in body["spec"]["workerPools"]]


async def sample_until(
    stop: asyncio.Event,
    *,
    redis_url: str | None,
    pools: list[str],
    cluster: ClusterRef | None,
    interval_s: float,
    into: list[Sample],
) -> None:
    """Append a Sample every `interval_s` until `stop` is set; a failing source is skipped."""
    redis = Redis.from_url(redis_url) if redis_url else None
    apis = _cluster_apis(cluster) if cluster else None
    if apis is not None and cluster is not None:
        # The JudgeCluster's own pools: this machine's KUBEJUDGE_POOLS (by default one pool,
        # "default") named queues the judge does not have, so its backlog read as zero.
        try:
            pools = await asyncio.to_thread(cluster_pools, apis, cluster)
        except Exception as error:
            log.warning("JudgeCluster pools not read, sampling %s: %s", pools, error)
    watcher = poolview.PoolWatcher(pools)
    try:
        while not stop.is_set():
            view: dict[str, Any] = {}
            if redis is not None:
                try:
                    view |= await redis_view(redis, watcher)
                except Exception as error:  # a sample is worth skipping, not the run
                    log.warning("redis sample failed: %s", error)
            if apis is not None and cluster is not None:
                try:
                    view |= await asyncio.to_thread(cluster_view, apis, cluster)
                except Exception as error:
                    log.warning("JudgeCluster sample failed: %s", error)
            into.append(Sample(at_ms=protocol.now_ms(), **view))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
    finally:
        if redis is not None:
            await redis.aclose()


def _cluster_apis(cluster: ClusterRef) -> ClusterApis:
    from kubernetes import client, config  # only a load test against a cluster needs it

    api_client = config.new_client_from_config(config_file=cluster.kubeconfig)
    return ClusterApis(
        custom=client.CustomObjectsApi(api_client), apps=client.AppsV1Api(api_client)
    )
