"""`kubejudge operator`: the kopf handlers, each a docstring and one delegating call.

The logic lives in plain modules: `reconcile` (children), `reapply` and `autoscaler` (the two
per-cluster loops, sharing a `clusterstate`), `resources` (pure manifests, a module per kind of
child), `kube` (the API calls).
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import kopf

from kubejudge.wellknown import OPERATOR_METRICS_PORT
from kubejudge_operator import autoscaler, reapply, reconcile, startup_hooks
from kubejudge_operator.clusterstate import ClusterState
from kubejudge_operator.resources.meta import MANAGED_BY
from kubejudge_operator.settings import OperatorSettings
from kubejudge_operator.spec import GROUP, PLURAL, VERSION

CHILDREN = {"app.kubernetes.io/managed-by": MANAGED_BY}


def deleted(type: str, **_: Any) -> bool:
    """kopf filter: only deletions (kopf names the event type `type`)."""
    return type == "DELETED"


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Connect to the API server and serve /metrics; keep kopf's bookkeeping off our status."""
    startup_hooks.configure(settings, memo)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Close the API client."""
    await memo.kube.aclose()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def reconcile_cluster(body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    """Make the children match the spec."""
    await reconcile.apply_spec(memo.kube, dict(body), patch)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def reapply_children(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Re-apply every child each reconcile interval, putting back what was edited by hand."""
    state = ClusterState.of(memo)
    await reapply.run(
        kube=memo.kube, settings=memo.settings, body=body, state=state, stopped=stopped
    )


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10)
async def autoscale(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Scale each worker pool from its queue, every poll, for as long as the cluster exists."""
    state = ClusterState.of(memo)
    await autoscaler.run(
        kube=memo.kube, settings=memo.settings, body=body, state=state, stopped=stopped
    )


@kopf.on.event("apps", "v1", "deployments", labels=CHILDREN, when=deleted)
@kopf.on.event("apps", "v1", "statefulsets", labels=CHILDREN, when=deleted)
@kopf.on.event("v1", "services", labels=CHILDREN, when=deleted)
@kopf.on.event("v1", "configmaps", labels=CHILDREN, when=deleted)
@kopf.on.event("policy", "v1", "poddisruptionbudgets", labels=CHILDREN, when=deleted)
@kopf.on.event("networking.k8s.io", "v1", "networkpolicies", labels=CHILDREN, when=deleted)
async def child_deleted(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Put back a child deleted by hand (edits are put back by the periodic re-apply)."""
    await reconcile.restore(memo.kube, dict(body))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n", "--namespace", action="append", default=[], help="watch this namespace (repeatable)"
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace")
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="kopf's health endpoint URL ('' turns it off)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (default: KUBEJUDGE_OPERATOR_METRICS_PORT"
        f" or {OPERATOR_METRICS_PORT}; 0 turns it off)",
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="do not coordinate with other operator instances (peering)",
    )


def run(args: argparse.Namespace) -> int:
    settings = OperatorSettings()
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"operator_metrics_port": args.metrics_port})
    logging.getLogger().setLevel(settings.log_level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per API call otherwise
    kopf.run(
        clusterwide=args.all_namespaces or not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
        standalone=args.standalone,
        memo=kopf.Memo(settings=settings),
    )
    return 0
