"""The chart on a real control plane (kube-apiserver, controllers, kwok nodes).

`helm install` puts the operator's objects in place; `kubejudge operator` then runs on this host
with the chart's ServiceAccount token, so every API call it makes is judged by the chart's RBAC.
It reconciles examples/judgecluster.yaml as shipped. Then, with the api, gateway and workers as
local processes on the test Redis and PostgreSQL, `kubejudge loadtest` sends a burst: the worker
Deployment scales up and back down and every verdict is delivered. `helm uninstall` leaves only
what the chart documents (the CRD).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kubejudge_dev import localservices
from kubejudge_operator.spec import GROUP, PLURAL, VERSION
from kubernetes import client
from kubernetes.client.rest import ApiException
from support.kube import http_get, operator_process, read_cluster
from support.polling import wait_until as _wait_until
from support.processes import stop

from kubejudge.settings import Settings

if TYPE_CHECKING:
    from tests.controlplane.fixture import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubejudge"
EXAMPLE = ROOT / "examples" / "judgecluster.yaml"
RELEASE = "kj"
SERVICE_ACCOUNT = f"{RELEASE}-kubejudge-operator"
# Every refusal names itself "Forbidden"; a bare "403" also matches log timestamps (",403").
FORBIDDEN = ("Forbidden", "forbidden")
# A helm install and the first reconcile take longer than one object's change.
wait_until = partial(_wait_until, timeout=60.0, interval=0.2)


def helm(controlplane: ControlPlane, *args: str) -> str:
    result = subprocess.run(
        [str(controlplane.bin_dir / "helm"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=controlplane.env(),
    )
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def api(controlplane: ControlPlane) -> client.ApiClient:
    return controlplane.admin_api_client()


@pytest.fixture(scope="module")
def release(controlplane: ControlPlane) -> Iterator[str]:
    """The chart installed into a fresh namespace, watching only that namespace."""
    namespace = controlplane.namespace("kj-chart")
    helm(
        controlplane,
        *("install", RELEASE, str(CHART), "--namespace", namespace, "--wait", "--timeout", "2m"),
        *("--set", f"operator.watchNamespaces={{{namespace}}}"),
    )
    yield namespace
    subprocess.run(
        [str(controlplane.bin_dir / "helm"), "uninstall", RELEASE, "--namespace", namespace],
        capture_output=True,
        timeout=120,
        check=False,
        env=controlplane.env(),
    )
    controlplane.delete_namespace(namespace)


@pytest.fixture(scope="module")
def operator_log(
    controlplane: ControlPlane, release: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """`kubejudge operator` authenticated as the chart's ServiceAccount; yields its log."""
    kubeconfig = controlplane.serviceaccount_kubeconfig(release, SERVICE_ACCOUNT, create=False)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    settings = {"KUBEJUDGE_POLL_INTERVAL_S": "0.5", "KUBEJUDGE_RECONCILE_INTERVAL_S": "5"}
    try:
        with operator_process(namespace=release, kubeconfig=kubeconfig, settings=settings, log=log):
            yield log
    finally:
        print(log.read_text()[-6000:])  # shown by pytest when a test of this module failed


def assert_never_forbidden(log: Path) -> None:
    refused = [line for line in log.read_text().splitlines() if any(w in line for w in FORBIDDEN)]
    assert not refused, "the chart's RBAC refused the operator:\n" + "\n".join(refused[:20])


# ---------------------------------------------------------------- install and RBAC


def test_install_puts_the_operator_in_place(
    controlplane: ControlPlane, api: client.ApiClient, release: str
) -> None:
    deployment = client.AppsV1Api(api).read_namespaced_deployment(
        f"{RELEASE}-kubejudge-operator", release
    )
    assert deployment.spec.replicas == 1 and deployment.spec.strategy.type == "Recreate"
    assert deployment.spec.template.spec.service_account_name == SERVICE_ACCOUNT
    bindings = client.RbacAuthorizationV1Api(api).list_namespaced_role_binding(release).items
    assert [b.metadata.name for b in bindings] == [f"{RELEASE}-kubejudge-operator"]
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert any(c.type == "Established" and c.status == "True" for c in crd.status.conditions)


@pytest.mark.parametrize(
    ("verb", "resource", "where", "allowed"),
    [
        ("patch", "deployments/scale", "here", True),
        ("patch", "judgeclusters/status", "here", True),
        ("patch", "pods", "here", True),
        ("get", "pods", "here", False),
        ("get", "secrets", "here", True),
        ("list", "secrets", "here", False),
        ("get", "secrets", "default", False),
        ("patch", "deployments", "default", False),
        ("delete", "namespaces", "cluster", False),
        ("create", "clusterrolebindings", "cluster", False),
    ],
)
def test_the_service_account_gets_exactly_what_the_operator_uses(
    controlplane: ControlPlane, release: str, verb: str, resource: str, where: str, allowed: bool
) -> None:
    scope = {"here": ["-n", release], "default": ["-n", "default"], "cluster": []}[where]
    user = f"system:serviceaccount:{release}:{SERVICE_ACCOUNT}"
    result = controlplane.kubectl(
        "auth", "can-i", verb, resource, *scope, "--as", user, check=False
    )
    assert result.stdout.strip() == ("yes" if allowed else "no"), result.stderr


def test_the_charts_own_judgecluster_passes_the_api_servers_validation(
    controlplane: ControlPlane, release: str
) -> None:
    """`judgeCluster.enabled` renders a Secret and a JudgeCluster the real CRD (its structural
    schema and CEL rules) accepts; a server-side dry run changes nothing."""
    rendered = helm(
        controlplane,
        *("template", "other", str(CHART), "--namespace", release),
        *("--set", "judgeCluster.enabled=true", "--show-only", "templates/judgecluster.yaml"),
    )
    result = controlplane.kubectl(
        "apply", "--dry-run=server", "-n", release, "-f", "-", input=rendered, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "judgecluster.kubejudge.dev/judge created (server dry run)" in result.stdout
    too_long = rendered.replace("name: judge\n", "name: judge-with-a-name-far-too-long\n")
    refused = controlplane.kubectl(
        "apply", "--dry-run=server", "-n", release, "-f", "-", input=too_long, check=False
    )
    assert refused.returncode != 0 and "at most 24 characters" in refused.stderr


def test_the_operator_reconciles_the_example_as_the_chart_account(
    controlplane: ControlPlane, api: client.ApiClient, release: str, operator_log: Path
) -> None:
    controlplane.kubectl("apply", "-n", release, "-f", str(EXAMPLE))
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    net, policy = client.NetworkingV1Api(api), client.PolicyV1Api(api)
    for name in ("judge-api", "judge-gateway", "judge-worker-general", "judge-worker-jvm"):
        wait_until(lambda n=name: apps.read_namespaced_deployment(n, release), what=name)
    for name in ("judge-redis", "judge-postgresql"):
        wait_until(lambda n=name: apps.read_namespaced_stateful_set(n, release), what=name)
    wait_until(lambda: core.read_namespaced_config_map("judge-config", release), what="config")
    wait_until(lambda: core.read_namespaced_secret("judge-postgresql-auth", release), what="pw")
    wait_until(lambda: net.read_namespaced_network_policy("judge-worker", release), what="netpol")
    wait_until(
        lambda: policy.read_namespaced_pod_disruption_budget("judge-api", release), what="pdb"
    )

    # The managed Redis is out of this host's reach (kwok runs no pods), and the autoscaler says
    # so in status: /status is patched under the chart's identity.
    def conditions() -> dict[str, str]:
        status = read_cluster(api, release, "judge").get("status") or {}
        return {c["type"]: c["status"] for c in status.get("conditions") or []}

    wait_until(lambda: conditions().get("RedisReachable") == "False", what="status conditions")
    assert conditions()["Reconciled"] == "True"
    # The jvm pool's minimum (1) went through /scale.
    assert apps.read_namespaced_deployment("judge-worker-jvm", release).spec.replicas == 1
    assert_never_forbidden(operator_log)


# ---------------------------------------------------------------- load test end to end


@dataclass(frozen=True)
class LocalJudge:
    pool: str
    deployment: str  # the pool's worker Deployment, which the operator scales
    api: str
    gateway: str
    env: dict[str, str]


@pytest.fixture
def local_judge(
    controlplane: ControlPlane, api: client.ApiClient, release: str, settings: Settings,
    tmp_path: Path,
) -> Iterator[LocalJudge]:  # fmt: skip
    """A JudgeCluster on the test Redis and PostgreSQL, with its api, gateway and two workers
    running here as processes (kwok runs no containers)."""
    pool = f"p{uuid.uuid4().hex[:6]}"
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name="local-stores"),
        string_data={
            "redis": settings.redis_url,
            "postgresql": settings.database_url,
            "jwt": settings.jwt_secret,
        },
    )
    client.CoreV1Api(api).create_namespaced_secret(release, secret)
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JudgeCluster",
        "metadata": {"name": "local"},
        "spec": {
            "images": {"api": "kj/api:1", "worker": "kj/worker:1", "gateway": "kj/gateway:1"},
            "redis": {"urlSecretRef": {"name": "local-stores", "key": "redis"}},
            "postgresql": {"urlSecretRef": {"name": "local-stores", "key": "postgresql"}},
            "jwtSecretRef": {"name": "local-stores", "key": "jwt"},
            "workerPools": [
                {
                    "name": pool,
                    "languages": ["*"],
                    "minReplicas": 0,
                    "maxReplicas": 4,
                    "targetBacklogPerWorker": 2,
                    "scaleDownDelaySeconds": 3,
                }
            ],
        },
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, release, PLURAL, body
    )
    ports = {"api": localservices.free_port(), "gateway": localservices.free_port()}
    env = os.environ | {
        "KUBEJUDGE_REDIS_URL": settings.redis_url,
        "KUBEJUDGE_DATABASE_URL": settings.database_url,
        "KUBEJUDGE_JWT_SECRET": settings.jwt_secret,
        "KUBEJUDGE_POOLS": json.dumps({pool: ["*"]}),
    }
    cli = [sys.executable, "-m", "kubejudge.cli"]
    commands = [
        [*cli, "api", "--host", "127.0.0.1", "--port", str(ports["api"])],
        [*cli, "gateway", "--host", "127.0.0.1", "--port", str(ports["gateway"])],
        [*cli, "worker", "--pool", pool, "--concurrency", "2", "--metrics-port", "0"],
        [*cli, "worker", "--pool", pool, "--concurrency", "2", "--metrics-port", "0"],
    ]
    processes = []
    for i, argv in enumerate(commands):
        with (tmp_path / f"{argv[3]}-{i}.log").open("wb") as output:
            processes.append(
                subprocess.Popen(argv, env=env, stdout=output, stderr=subprocess.STDOUT)
            )
    try:
        for role in ("api", "gateway"):
            wait_until(lambda r=role: http_get(f"http://127.0.0.1:{ports[r]}/readyz"), what=role)
        yield LocalJudge(
            pool=pool,
            deployment=f"local-worker-{pool}",
            api=f"http://127.0.0.1:{ports['api']}",
            gateway=f"ws://127.0.0.1:{ports['gateway']}",
            env=env,
        )
    finally:
        stop(processes)


def test_a_burst_scales_the_pool_up_and_down_and_every_verdict_arrives(
    controlplane: ControlPlane,
    api: client.ApiClient,
    release: str,
    operator_log: Path,
    local_judge: LocalJudge,
    settings: Settings,
    tmp_path: Path,
) -> None:
    apps = client.AppsV1Api(api)
    deployment = local_judge.deployment
    wait_until(lambda: apps.read_namespaced_deployment(deployment, release), what=deployment)
    seen: list[int] = []
    done = threading.Event()

    def watch_replicas() -> None:
        while not done.is_set():
            with contextlib.suppress(ApiException):
                seen.append(apps.read_namespaced_deployment(deployment, release).spec.replicas)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_replicas, daemon=True)
    watcher.start()
    report = tmp_path / "report"
    argv = [
        sys.executable, "-m", "kubejudge.cli", "loadtest", "--burst", "24", "--work-s", "0.3",
        "--users", "3", "--timeout", "120", "--api", local_judge.api,
        "--gateway", local_judge.gateway, "--redis-url", settings.redis_url,
        "--judgecluster", f"{release}/local", "--kubeconfig", controlplane.kubeconfig,
        "--out", str(report), "--no-progress", "--observe-s", "8",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            env=local_judge.env,
        )
        summary = json.loads((report / "summary.json").read_text())
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert summary["verdicts_delivered"] == 24 and summary["lost_verdicts"] == 0, summary
        assert summary["errors"]["total"] == 0, summary
        assert (report / "timeline.png").stat().st_size > 10_000
        wait_until(lambda: seen and seen[-1] == 0, timeout=60, what="scale back to zero")
    finally:
        done.set()
        watcher.join()
    assert max(seen) >= 2, f"the pool never scaled up: {seen}"
    assert seen[0] == 0 and seen[-1] == 0
    assert summary["peak_desired_workers"] >= 2, summary
    assert_never_forbidden(operator_log)


# ---------------------------------------------------------------- uninstall


def test_uninstall_leaves_only_what_the_chart_documents(
    controlplane: ControlPlane, api: client.ApiClient, release: str, operator_log: Path
) -> None:
    custom = client.CustomObjectsApi(api)
    # JudgeClusters are the user's, not the chart's: delete them while the operator still runs
    # (it removes its finalizer), as the chart README says.
    for jc in custom.list_namespaced_custom_object(GROUP, VERSION, release, PLURAL)["items"]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, release, PLURAL, jc["metadata"]["name"]
        )
    wait_until(
        lambda: not custom.list_namespaced_custom_object(GROUP, VERSION, release, PLURAL)["items"],
        what="JudgeClusters gone",
    )
    children = "app.kubernetes.io/managed-by=kubejudge-operator"
    apps = client.AppsV1Api(api)
    wait_until(
        lambda: not apps.list_namespaced_deployment(release, label_selector=children).items,
        what="their children garbage-collected",
    )
    time.sleep(2)  # the operator sees those deletions (and finds no owner to restore)
    # Checked before the uninstall takes the operator's permissions away.
    assert_never_forbidden(operator_log)
    helm(controlplane, "uninstall", RELEASE, "--namespace", release, "--wait")

    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/managed-by=Helm"
    core = client.CoreV1Api(api)
    rbac, net = client.RbacAuthorizationV1Api(api), client.NetworkingV1Api(api)
    left = [
        *apps.list_namespaced_deployment(release, label_selector=selector).items,
        *core.list_namespaced_service(release, label_selector=selector).items,
        *core.list_namespaced_service_account(release, label_selector=selector).items,
        *core.list_namespaced_secret(release, label_selector=selector).items,
        *core.list_namespaced_config_map(release, label_selector=selector).items,
        *net.list_namespaced_network_policy(release, label_selector=selector).items,
        *rbac.list_namespaced_role_binding(release, label_selector=selector).items,
        *rbac.list_cluster_role(label_selector=selector).items,
        *rbac.list_cluster_role_binding(label_selector=selector).items,
    ]
    assert not left, [f"{o.kind or type(o).__name__} {o.metadata.name}" for o in left]
    # Documented: the CRD stays (Helm never deletes crds/), so other JudgeClusters survive.
    client.ApiextensionsV1Api(api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
