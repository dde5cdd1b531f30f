"""One loop per JudgeCluster (a kopf daemon): re-apply every child each `reconcile_interval_s`,
putting back what was edited by hand, and report the outcome in conditions and Events.

A daemon rather than a kopf timer: its interval is the one in the settings read at start-up
(a timer's is fixed when its decorator runs, at import), an API hiccup retries at the next
poll rather than after a handler backoff, and no "succeeded" line is logged every interval.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import kopf

from kubejudge_operator import reconcile
from kubejudge_operator.clusterstate import ClusterState
from kubejudge_operator.kube import Kube, KubeError
from kubejudge_operator.resources.stores import redis_url_managed
from kubejudge_operator.settings import OperatorSettings
from kubejudge_operator.spec import ClusterSpec, Owner

log = logging.getLogger(__name__)


async def reapply(kube: Kube, body: dict[str, Any], state: ClusterState) -> None:
    """Apply the children; record whether that worked, what egress stays open, and the Redis
    the autoscaler should read."""
    owner = Owner.of(body)
    spec = ClusterSpec.model_validate(body["spec"])
    try:
        open_egress = await reconcile.reconcile_cluster(kube, body)
        url = await reconcile.store_url(
            kube, owner, spec.redis, managed_url=redis_url_managed(owner)
        )
    except KubeError as error:
        state.conditions.set("Reconciled", False, "ApplyFailed", str(error))
        log.warning("reconciling %s/%s failed: %s", owner.namespace, owner.name, error)
        return
    state.conditions.set("Reconciled", True, "Applied", "every child matches the spec")
    report_egress(body, owner, state, open_egress)
    state.redis_url = url


def report_egress(
    body: dict[str, Any], owner: Owner, state: ClusterState, open_egress: list[str]
) -> None:
    """WorkerEgressRestricted, plus a Warning Event and log line whenever what is open
    changes (not every reconcile)."""
    conditions = state.conditions
    if not open_egress:
        message = "worker pods reach only their stores' addresses and DNS"
        conditions.set("WorkerEgressRestricted", True, "Restricted", message)
        return
    message = "; ".join(open_egress)
    before = conditions.items.get("WorkerEgressRestricted", {}).get("message")
    conditions.set("WorkerEgressRestricted", False, "OpenToAnyAddress", message)
    if message != before:
        log.warning("%s/%s: %s", owner.namespace, owner.name, message)
        kopf.event(body, type="Warning", reason="WorkerEgressOpen", message=message)


async def run(
    *,
    kube: Kube,
    settings: OperatorSettings,
    body: kopf.Body,
    state: ClusterState,
    stopped: kopf.DaemonStopped,
) -> None:
    """Until the JudgeCluster goes away or the operator stops; the first apply at once."""
    while not stopped:
        started = time.monotonic()
        wait_s = settings.reconcile_interval_s
        try:
            await reapply(kube, dict(body), state)
        except httpx.HTTPError as error:  # the API server hiccuped: try again soon
            log.warning("re-apply failed, retrying next poll: %s", error)
            wait_s = settings.poll_interval_s
        # Each interval from the last start, so a slow apply does not stretch it.
        await stopped.wait(max(0.0, started + wait_s - time.monotonic()))
