"""One loop per JudgeCluster (a kopf daemon): scale every worker pool from its queue each poll,
and report it in status, Events and metrics (with the conditions `reapply` sets).

Per pool and poll: read the backlog and the heartbeats from Redis, ask `kubejudge.scaling` for
the size, and when it changes, mark busy pods with a high pod-deletion cost BEFORE shrinking, so
the ReplicaSet removes idle pods; then patch the Deployment's /scale subresource. When Redis is
unreachable every pool keeps its size and the RedisReachable condition says why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import kopf
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubejudge import poolload, poolview
from kubejudge.scaling import Decision, Memory, Observation, decide, wants_fewer
from kubejudge_operator import metrics
from kubejudge_operator.clusterstate import ClusterState
from kubejudge_operator.conditions import utc_now
from kubejudge_operator.kube import Kube, KubeError
from kubejudge_operator.resources.meta import name_of, selector_labels, worker_name
from kubejudge_operator.resources.workers import DELETION_COST_ANNOTATION, deletion_cost
from kubejudge_operator.settings import OperatorSettings
from kubejudge_operator.spec import ClusterSpec, Owner, WorkerPool

log = logging.getLogger(__name__)

READY_CHECK_S = 5.0


@dataclass
class PoolState:
    memory: Memory = field(default_factory=Memory)
    last_decision: dict[str, Any] | None = None


@dataclass
class ClusterLoop:
    kube: Kube
    settings: OperatorSettings
    body: kopf.Body
    state: ClusterState
    pools: dict[str, PoolState] = field(default_factory=dict)
    redis: Redis | None = None
    redis_url: str | None = None
    written: dict[str, Any] = field(default_factory=dict)
    next_ready_check: float = 0.0

    async def tick(self) -> None:
        owner = Owner.of(dict(self.body))
        spec = ClusterSpec.model_validate(dict(self.body["spec"]))
        now = time.monotonic()
        await self.follow_redis()
        pools: dict[str, dict[str, Any]] = {}
        loads = await self.observe(owner, spec)
        if loads is not None:
            for pool in spec.worker_pools:
                entry = await self.scale_pool(owner, pool, loads[pool.name])
                if entry is not None:
                    pools[pool.name] = entry
        else:  # Redis unreachable: keep every size, keep the last figures
            pools = dict(self.written.get("pools") or {})
        if now >= self.next_ready_check:
            await self.check_ready(owner)
            self.next_ready_check = now + READY_CHECK_S
        for gone in set(self.pools) - {pool.name for pool in spec.worker_pools}:
            del self.pools[gone]
            metrics.forget(namespace=owner.namespace, cluster=owner.name, pool=gone)
        await self.write_status(owner, pools)

    async def follow_redis(self) -> None:
        """Connect to the Redis the last re-apply found, when that is another one."""
        url = self.state.redis_url
        if url == self.redis_url or url is None:
            return
        await self.close()
        self.redis_url = url
        try:
            self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        except ValueError as error:  # not a redis:// URL: say so, keep the sizes
            self.state.conditions.set("RedisReachable", False, "BadRedisURL", str(error))

    async def observe(self, owner: Owner, spec: ClusterSpec) -> dict[str, poolload.PoolLoad] | None:
        if self.redis is None:  # no usable URL yet (see the RedisReachable condition)
            return None
        labels = {"namespace": owner.namespace, "cluster": owner.name}
        try:
            loads = {
                pool.name: await poolload.observe(self.redis, pool.name)
                for pool in spec.worker_pools
            }
        except (RedisError, OSError) as error:
            if (
                self.state.conditions.ok("RedisReachable")
                or "RedisReachable" not in self.state.conditions.items
            ):
                log.warning("Redis of %s/%s unreachable: %s", owner.namespace, owner.name, error)
            self.state.conditions.set(
                "RedisReachable", False, "RedisUnreachable", f"keeping pool sizes: {error}"
            )
            metrics.REDIS_UP.labels(**labels).set(0)
            return None
        self.state.conditions.set("RedisReachable", True, "RedisAnswered", "queue depths are read")
        metrics.REDIS_UP.labels(**labels).set(1)
        return loads

    async def scale_pool(
        self, owner: Owner, pool: WorkerPool, load: poolload.PoolLoad
    ) -> dict[str, Any] | None:
        deployment = worker_name(owner, pool.name)
        current = await self.kube.replicas(owner.namespace, deployment)
        if current is None:  # not created yet; the next reconcile creates it
            return None
        seen = Observation(
            waiting=load.backlog.waiting,
            pending=load.backlog.pending,
            busy=min(load.busy, current),
            current=current,
        )
        if wants_fewer(pool.limits, seen):
            marked = await self.mark_deletion_costs(owner, pool, load.busy_pods)
            seen = dataclasses.replace(seen, marking=marked > 0)
        state = self.pools.setdefault(pool.name, PoolState())
        decision = decide(limits=pool.limits, seen=seen, memory=state.memory, now=time.monotonic())
        state.memory = decision.memory
        await self.show_decision(pool, decision)
        if decision.changed:
            await self.resize(owner, pool, decision)
            state.last_decision = {
                "time": utc_now(),
                "from": decision.current,
                "to": decision.desired,
                "reason": decision.reason,
            }
        metrics.record(
            namespace=owner.namespace,
            cluster=owner.name,
            pool=pool.name,
            limits=pool.limits,
            seen=seen,
            oldest_waiting_ms=load.oldest_waiting_ms,
            decision=decision,
        )
        entry: dict[str, Any] = {
            "waiting": seen.waiting,
            "pending": seen.pending,
            "backlog": seen.backlog,
            "busy": seen.busy,
            "desired": decision.desired,
            "current": decision.desired if decision.changed else current,
        }
        if state.last_decision is not None:
            entry["lastDecision"] = state.last_decision
        return entry

    async def show_decision(self, pool: WorkerPool, decision: Decision) -> None:
        """For the pool view of every page (kubejudge.poolview); the page can go without."""
        if self.redis is None:
            return
        with contextlib.suppress(RedisError, OSError):
            await poolview.record_decision(
                self.redis,
                pool=pool.name,
                desired=decision.desired,
                current=decision.current,
                reason=decision.reason,
            )

    async def resize(self, owner: Owner, pool: WorkerPool, decision: Decision) -> None:
        deployment = worker_name(owner, pool.name)
        await self.kube.scale(owner.namespace, deployment, decision.desired)
        up = decision.desired > decision.current
        log.info("%s/%s pool %s: %s", owner.namespace, owner.name, pool.name, decision.reason)
        kopf.event(
            self.body,
            type="Normal",
            reason="ScaledUp" if up else "ScaledDown",
            message=f"pool {pool.name}: {decision.reason}",
        )

    async def mark_deletion_costs(
        self, owner: Owner, pool: WorkerPool, busy_pods: frozenset[str]
    ) -> int:
        """Busy pods cost more to delete, so the ReplicaSet picks idle ones (KEP-2255).
        Kept current while a scale-down is pending; returns how many pods changed."""
        changed = 0
        selector = selector_labels(owner, "worker", pool.name)
        for pod in await self.kube.select("Pod", owner.namespace, selector):
            name = pod["metadata"]["name"]
            want = deletion_cost(name in busy_pods)
            have = (pod["metadata"].get("annotations") or {}).get(DELETION_COST_ANNOTATION)
            if have != want:
                annotations = {DELETION_COST_ANNOTATION: want}
                with contextlib.suppress(KubeError):  # a pod may vanish meanwhile
                    await self.kube.merge_patch(
                        "Pod", owner.namespace, name, {"metadata": {"annotations": annotations}}
                    )
                    changed += 1
        return changed

    async def check_ready(self, owner: Owner) -> None:
        missing = []
        for component in ("api", "gateway"):
            found = await self.kube.get("Deployment", owner.namespace, name_of(owner, component))
            if found is None or not (found.get("status") or {}).get("availableReplicas"):
                missing.append(component)
        ready = (
            not missing
            and self.state.conditions.ok("Reconciled")
            and self.state.conditions.ok("RedisReachable")
        )
        if ready:
            self.state.conditions.set("Ready", True, "Available", "api, gateway and Redis are up")
        elif missing:
            self.state.conditions.set(
                "Ready", False, "NotAvailable", f"no available {' or '.join(missing)}"
            )
        else:
            self.state.conditions.set("Ready", False, "Degraded", "see the other conditions")

    async def write_status(self, owner: Owner, pools: dict[str, dict[str, Any]]) -> None:
        status: dict[str, Any] = {
            "pools": pools,
            "backlog": sum(entry["backlog"] for entry in pools.values()),
            "workers": sum(entry["current"] for entry in pools.values()),
            "conditions": self.state.conditions.listed(),
        }
        if status == self.written:
            return
        removed = set(self.written.get("pools") or {}) - set(pools)
        body = {"status": status | {"pools": pools | dict.fromkeys(removed)}}  # None deletes
        try:
            await self.kube.merge_patch(
                "JudgeCluster", owner.namespace, owner.name, body, sub="status"
            )
        except KubeError as error:
            log.warning("status of %s/%s not written: %s", owner.namespace, owner.name, error)
            return
        self.written = status

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None


async def run(
    *,
    kube: Kube,
    settings: OperatorSettings,
    body: kopf.Body,
    state: ClusterState,
    stopped: kopf.DaemonStopped,
) -> None:
    """Until the JudgeCluster goes away or the operator stops."""
    loop = ClusterLoop(kube=kube, settings=settings, body=body, state=state)
    try:
        while not stopped:
            try:
                await loop.tick()
            except (KubeError, httpx.HTTPError) as error:  # the API server hiccuped
                log.warning("autoscaler poll failed, retrying next poll: %s", error)
            await stopped.wait(settings.poll_interval_s)
    finally:
        await loop.close()
        meta = body.get("metadata", {})
        for pool in loop.pools:
            metrics.forget(
                namespace=meta.get("namespace", ""), cluster=meta.get("name", ""), pool=pool
            )
