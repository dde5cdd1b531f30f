"""The operator on a real control plane (kube-apiserver, controllers, kwok nodes) with a real
Redis: `kubejudge operator` runs as a subprocess watching one namespace.

kwok runs no containers, so worker "busyness" comes from heartbeats these tests write to Redis,
exactly as workers write them (protocol.Heartbeat).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from kubejudge_dev import localservices
from kubejudge_operator.spec import GROUP, PLURAL, VERSION
from kubernetes import client
from kubernetes.client.rest import ApiException
from redis.asyncio import Redis
from support.kube import http_get, operator_process, read_cluster
from support.polling import wait_until

from kubejudge import protocol, queue

if TYPE_CHECKING:
    from tests.controlplane.fixture import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts/kubejudge/crds/judgecluster.yaml"
POLL_S = 1.0  # the operator's default poll interval, used as is
RECONCILE_S = 2.0


@pytest.fixture(scope="module")
def api(controlplane: ControlPlane) -> client.ApiClient:
    return controlplane.admin_api_client()


@pytest.fixture(scope="module")
def namespace(controlplane: ControlPlane, api: client.ApiClient) -> Iterator[str]:
    controlplane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    controlplane.kubectl(
        "wait", "--for=condition=Established", "crd/judgeclusters.kubejudge.dev", "--timeout=30s"
    )
    name = controlplane.namespace("kj-operator")
    yield name
    controlplane.delete_namespace(name)


@pytest.fixture(scope="module")
def operator(
    controlplane: ControlPlane, namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[int]:
    """The operator running as a ServiceAccount; yields its metrics port."""
    metrics_port = localservices.free_port()
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    # As a ServiceAccount (a bearer token, as in a pod); the chart's test holds it to least
    # privilege, this one to the operator's behaviour.
    rbac = client.RbacAuthorizationV1Api(controlplane.admin_api_client())
    binding = rbac.create_cluster_role_binding(
        client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name=f"{namespace}-operator"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="operator", namespace=namespace)
            ],
        )
    )
    kubeconfig = controlplane.serviceaccount_kubeconfig(namespace, "operator")
    settings = {
        "KUBEJUDGE_RECONCILE_INTERVAL_S": str(RECONCILE_S),
        "KUBEJUDGE_POLL_INTERVAL_S": str(POLL_S),
    }
    try:
        with operator_process(
            namespace=namespace, kubeconfig=kubeconfig, settings=settings, log=log,
            metrics_port=metrics_port,
        ):  # fmt: skip
            yield metrics_port
            # While the operator still runs, so it releases its finalizers and the namespace
            # goes.
            controlplane.kubectl("delete", "judgeclusters", "--all", "-n", namespace, "--wait=true")
    finally:
        rbac.delete_cluster_role_binding(binding.metadata.name)
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line]
        assert not errors, log.read_text()[-5000:]


@pytest.fixture
async def queue_redis(redis_server: localservices.LocalServer) -> AsyncIterator[Redis]:
    connection = Redis.from_url(redis_server.url)
    await connection.flushall()
    yield connection
    await connection.aclose()


@pytest.fixture
def cluster(
    api: client.ApiClient, namespace: str, operator: int, redis_server: Any
) -> Callable[..., dict[str, Any]]:
    """Create a JudgeCluster with a unique name; Redis is the test server, PostgreSQL managed."""
    core = client.CoreV1Api(api)
    secret = client.V1Secret(
        metadata=client.V1ObjectMeta(name=f"stores-{uuid.uuid4().hex[:6]}"),
        string_data={"redis": redis_server.url, "jwt": "x" * 40},
    )
    secret_name = core.create_namespaced_secret(namespace, secret).metadata.name

    def create(**spec: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "JudgeCluster",
            "metadata": {"name": f"jc-{uuid.uuid4().hex[:6]}"},
            "spec": {
                "images": {"api": "kj/api:1", "worker": "kj/worker:1", "gateway": "kj/gateway:1"},
                "redis": {"urlSecretRef": {"name": secret_name, "key": "redis"}},
                "postgresql": {"managed": True},
                "jwtSecretRef": {"name": secret_name, "key": "jwt"},
                "workerPools": [{"name": "default", "languages": ["*"]}],
            }
            | spec,
        }
        return client.CustomObjectsApi(api).create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, body
        )

    return create


def patch_cluster(api: client.ApiClient, namespace: str, name: str, spec: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name, {"spec": spec}
    )


def replicas(apps: client.AppsV1Api, namespace: str, name: str) -> int:
    return int(apps.read_namespaced_deployment(name, namespace).spec.replicas)


def worker_pods(core: client.CoreV1Api, namespace: str, cluster: str, pool: str) -> list[Any]:
    selector = f"app.kubernetes.io/instance={cluster},kubejudge.dev/pool={pool}"
    pods = core.list_namespaced_pod(namespace, label_selector=selector).items
    return [pod for pod in pods if pod.metadata.deletion_timestamp is None]


async def heartbeat(redis: Redis, *, pool: str, pod: str, busy: bool) -> None:
    beat = protocol.Heartbeat(
        worker_id=pod, pool=pool, concurrency=1, tokens=["t-busy"] if busy else [], pod_name=pod
    )
    await redis.set(protocol.worker_heartbeat(pool, pod), beat.model_dump_json(), px=60_000)
    await redis.zadd(protocol.worker_index(pool), {pod: protocol.now_ms() + 60_000})


# ---------------------------------------------------------------- tests


def test_children_appear_owned_and_the_cluster_becomes_ready(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    jc = cluster(workerPools=[{"name": "py", "languages": ["python"], "minReplicas": 1}])
    name, uid = jc["metadata"]["name"], jc["metadata"]["uid"]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    policy, net = client.PolicyV1Api(api), client.NetworkingV1Api(api)

    worker = wait_until(
        lambda: apps.read_namespaced_deployment(f"{name}-worker-py", namespace), what="worker"
    )
    children = [
        worker,
        apps.read_namespaced_deployment(f"{name}-api", namespace),
        apps.read_namespaced_deployment(f"{name}-gateway", namespace),
        apps.read_namespaced_stateful_set(f"{name}-postgresql", namespace),
        core.read_namespaced_service(f"{name}-api", namespace),
        core.read_namespaced_service(f"{name}-gateway", namespace),
        core.read_namespaced_service(f"{name}-postgresql", namespace),
        core.read_namespaced_config_map(f"{name}-config", namespace),
        core.read_namespaced_secret(f"{name}-postgresql-auth", namespace),
        policy.read_namespaced_pod_disruption_budget(f"{name}-worker-py", namespace),
        net.read_namespaced_network_policy(f"{name}-worker", namespace),
    ]
    for child in children:
        (owner,) = child.metadata.owner_references
        assert (owner.kind, owner.name, owner.uid, owner.controller) == (
            "JudgeCluster", name, uid, True,
        )  # fmt: skip
        assert child.metadata.labels["app.kubernetes.io/instance"] == name
    assert worker.spec.replicas == 1  # created at minReplicas
    # The worker pod as the real API server validated and stored it.
    pod = worker.spec.template.spec
    assert pod.automount_service_account_token is False
    assert pod.host_users is False
    assert (pod.security_context.run_as_user, pod.security_context.run_as_non_root) == (0, False)
    assert pod.security_context.seccomp_profile.type == "Unconfined"
    security = pod.containers[0].security_context
    assert security.capabilities.drop == ["ALL"]
    assert security.capabilities.add == ["KILL", "SETGID", "SETUID"]
    assert (security.allow_privilege_escalation, security.read_only_root_filesystem) == (
        False, True,
    )  # fmt: skip
    assert security.proc_mount == "Unmasked"
    assert pod.termination_grace_period_seconds > 60
    config = core.read_namespaced_config_map(f"{name}-config", namespace)
    assert json.loads(config.data["KUBEJUDGE_POOLS"]) == {"py": ["python"]}

    def ready() -> bool:
        status = read_cluster(api, namespace, name).get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        return conditions.get("Ready") == "True" and status.get("observedGeneration") == 1

    wait_until(ready, timeout=60, what="Ready condition")  # kwok runs the api/gateway pods


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {
                "workerPools": [
                    {"name": "a", "languages": ["*"], "minReplicas": 5, "maxReplicas": 2}
                ]
            },
            "minReplicas must not exceed maxReplicas",
        ),
        (
            {
                "workerPools": [
                    {"name": "a", "languages": ["c"]},
                    {"name": "a", "languages": ["go"]},
                ]
            },
            "Duplicate value",
        ),
        ({"workerPools": [{"name": "Not_A_Label", "languages": ["*"]}]}, "should match"),
        ({"workerPools": [{"name": "a", "languages": ["cobol"]}]}, "Unsupported value"),
        ({"workerPools": []}, "should have at least 1 items"),
        ({"redis": {"managed": True, "urlSecretRef": {"name": "s", "key": "k"}}}, "exactly one"),
        ({"maxWallTimeSeconds": 0}, "should be greater than or equal to 1"),
        (
            {"redis": {"urlSecretRef": {"name": "s", "key": "k"}, "egressCIDRs": "10.0.0.0/8"}},
            "must be of type array",
        ),
        (
            {"redis": {"urlSecretRef": {"name": "s", "key": "k"}, "egressCIDRs": ["10.0.0/8"]}},
            "must be of type cidr",
        ),
        (
            {"redis": {"managed": True, "egressCIDRs": ["10.0.0.0/8"]}},
            "egressCIDRs is for an external store",
        ),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]],
    spec: dict[str, Any], message: str,
) -> None:  # fmt: skip
    with pytest.raises(ApiException) as refused:
        cluster(**spec)
    assert refused.value.status == 422
    assert message in json.loads(refused.value.body)["message"]


def test_worker_egress_is_pinned_to_the_stores_addresses_or_reported_open(
    api: client.ApiClient,
    namespace: str,
    cluster: Callable[..., dict[str, Any]],
    redis_server: localservices.LocalServer,
) -> None:
    """Redis's URL in its Secret holds an IP (127.0.0.1): the policy allows only that address.
    PostgreSQL's names a host: its port stays open to any address, and the cluster says so
    until egressCIDRs closes it."""
    core, net = client.CoreV1Api(api), client.NetworkingV1Api(api)
    secret = f"pg-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret),
            string_data={"url": "postgresql://judge:pw@db.example.com:6543/judge"},
        ),
    )
    name = cluster(postgresql={"urlSecretRef": {"name": secret, "key": "url"}})["metadata"]["name"]

    def egress() -> list[dict[str, Any]]:
        policy = net.read_namespaced_network_policy(f"{name}-worker", namespace)
        return list(api.sanitize_for_serialization(policy)["spec"]["egress"][:2])

    def condition() -> dict[str, str] | None:
        status = read_cluster(api, namespace, name).get("status", {})
        found = (c for c in status.get("conditions", []) if c["type"] == "WorkerEgressRestricted")
        return next(found, None)

    redis, postgres = wait_until(egress, what="the worker NetworkPolicy")
    assert redis == {
        "ports": [{"protocol": "TCP", "port": urlsplit(redis_server.url).port}],
        "to": [{"ipBlock": {"cidr": "127.0.0.1/32"}}],
    }
    assert postgres == {"ports": [{"protocol": "TCP", "port": 6543}]}  # any address
    reported = wait_until(
        lambda: (c := condition()) and c["status"] == "False" and c, what="the open egress"
    )
    assert reported["reason"] == "OpenToAnyAddress"
    assert "postgresql (TCP 6543) is open to any address" in reported["message"]
    assert "spec.postgresql.egressCIDRs" in reported["message"]
    assert "egress to redis" not in reported["message"]  # pinned

    def warned() -> bool:
        selector = f"involvedObject.name={name}"
        events = core.list_namespaced_event(namespace, field_selector=selector).items
        return any(e.type == "Warning" and e.reason == "WorkerEgressOpen" for e in events)

    wait_until(warned, what="a Warning event about the open egress")

    store = {"urlSecretRef": {"name": secret, "key": "url"}, "egressCIDRs": ["10.96.7.9/24"]}
    patch_cluster(api, namespace, name, {"postgresql": store})
    wait_until(
        lambda: egress()[1].get("to") == [{"ipBlock": {"cidr": "10.96.7.0/24"}}],
        timeout=RECONCILE_S * 5,
        what="PostgreSQL's egress pinned to its CIDR",
    )
    wait_until(
        lambda: (c := condition()) and c["status"] == "True",
        timeout=RECONCILE_S * 5,
        what="WorkerEgressRestricted=True",
    )


def test_spec_changes_roll_through_and_removed_pools_go(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    name = cluster()["metadata"]["name"]
    apps = client.AppsV1Api(api)
    wait_until(lambda: apps.read_namespaced_deployment(f"{name}-worker-default", namespace))
    patch_cluster(
        api,
        namespace,
        name,
        {
            "api": {"replicas": 3},
            "images": {"api": "kj/api:2", "worker": "kj/worker:2", "gateway": "kj/gateway:1"},
            "workerPools": [{"name": "jvm", "languages": ["java"], "minReplicas": 2}],
        },
    )

    def rolled() -> bool:
        api_deployment = apps.read_namespaced_deployment(f"{name}-api", namespace)
        jvm = apps.read_namespaced_deployment(f"{name}-worker-jvm", namespace)
        return (
            api_deployment.spec.replicas == 3
            and api_deployment.spec.template.spec.containers[0].image == "kj/api:2"
            and jvm.spec.replicas == 2
            and jvm.spec.template.spec.containers[0].image == "kj/worker:2"
        )

    wait_until(rolled, what="the new spec in the children")

    def pruned() -> bool:
        try:
            apps.read_namespaced_deployment(f"{name}-worker-default", namespace)
        except ApiException as error:
            return error.status == 404
        return False

    wait_until(pruned, what="the removed pool's Deployment deleted")

    def reported() -> bool:
        status = read_cluster(api, namespace, name)["status"]
        return status["observedGeneration"] == 2 and set(status.get("pools", {})) == {"jvm"}

    wait_until(reported, what="status about the new generation and pools")


def test_fields_dropped_from_the_spec_leave_the_children_but_replicas_stay(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    pool = {
        "name": "sandboxed", "languages": ["*"], "minReplicas": 2, "maxReplicas": 5,
        "scaleDownDelaySeconds": 600,  # the size set below must not be scaled back meanwhile
    }  # fmt: skip
    resources = {"requests": {"cpu": "100m"}}
    name = cluster(workerPools=[pool | {"runtimeClassName": "gvisor", "resources": resources}])[
        "metadata"
    ]["name"]  # fmt: skip
    apps = client.AppsV1Api(api)
    deployment = f"{name}-worker-sandboxed"
    first = wait_until(lambda: apps.read_namespaced_deployment(deployment, namespace))
    assert first.spec.template.spec.runtime_class_name == "gvisor"
    assert first.spec.replicas == 2

    def autoscaler_owns_replicas() -> bool:
        fields = apps.read_namespaced_deployment(deployment, namespace).metadata.managed_fields
        return any(
            entry.manager == "kubejudge-autoscaler"
            and "f:replicas" in (entry.fields_v1 or {}).get("f:spec", {})
            for entry in fields
        )

    wait_until(autoscaler_owns_replicas, what="replicas handed to the autoscaler")
    # The autoscaler moves the size (2 -> 3 stands in for a decision); a spec change follows.
    apps.patch_namespaced_deployment_scale(
        deployment, namespace, {"spec": {"replicas": 3}}, field_manager="kubejudge-autoscaler"
    )
    patch_cluster(api, namespace, name, {"workerPools": [pool | {"maxReplicas": 6}]})

    def dropped() -> bool:
        spec = apps.read_namespaced_deployment(deployment, namespace).spec
        container = spec.template.spec.containers[0]
        return spec.template.spec.runtime_class_name is None and not (
            container.resources and container.resources.requests
        )

    wait_until(dropped, what="runtimeClassName and resources gone from the template")
    assert replicas(apps, namespace, deployment) == 3  # not reset by the re-apply


def test_children_deleted_or_edited_by_hand_are_put_back(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    name = cluster()["metadata"]["name"]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    first = wait_until(lambda: apps.read_namespaced_deployment(f"{name}-api", namespace))
    wait_until(lambda: core.read_namespaced_service(f"{name}-gateway", namespace))

    apps.delete_namespaced_deployment(f"{name}-api", namespace)
    core.delete_namespaced_service(f"{name}-gateway", namespace)
    back = wait_until(
        lambda: apps.read_namespaced_deployment(f"{name}-api", namespace), what="api back"
    )
    assert back.metadata.uid != first.metadata.uid
    wait_until(lambda: core.read_namespaced_service(f"{name}-gateway", namespace), what="svc back")

    container = {"name": "api", "image": "evil/image:1"}
    apps.patch_namespaced_deployment(
        f"{name}-api", namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )

    def undone() -> bool:
        template = apps.read_namespaced_deployment(f"{name}-api", namespace).spec.template
        return bool(template.spec.containers[0].image == "kj/api:1")

    wait_until(undone, timeout=RECONCILE_S * 5, what="the edit undone")


def test_an_edit_alone_is_undone_by_the_periodic_reapply(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    """No deletion here, whose restore would re-apply too: only the periodic re-apply can
    undo this edit."""
    name = cluster()["metadata"]["name"]
    apps = client.AppsV1Api(api)
    wait_until(
        lambda: read_cluster(api, namespace, name).get("status", {}).get("observedGeneration"),
        what="the create handler's apply",
    )
    wait_until(lambda: apps.read_namespaced_deployment(f"{name}-gateway", namespace))
    container = {"name": "gateway", "image": "evil/image:2"}
    apps.patch_namespaced_deployment(
        f"{name}-gateway", namespace, {"spec": {"template": {"spec": {"containers": [container]}}}}
    )

    def undone() -> bool:
        template = apps.read_namespaced_deployment(f"{name}-gateway", namespace).spec.template
        return bool(template.spec.containers[0].image == "kj/gateway:1")

    wait_until(undone, timeout=RECONCILE_S * 5, what="the edit undone")


async def test_queue_growth_scales_up_at_once_and_down_after_the_delay_keeping_busy_pods(
    api: client.ApiClient,
    namespace: str,
    cluster: Callable[..., dict[str, Any]],
    queue_redis: Redis,
) -> None:
    pool = "burst"
    name = cluster(
        workerPools=[
            {
                "name": pool, "languages": ["*"], "minReplicas": 0, "maxReplicas": 6,
                "targetBacklogPerWorker": 2, "scaleDownDelaySeconds": 3,
            }
        ]
    )["metadata"]["name"]  # fmt: skip
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    redis = queue_redis
    deployment = f"{name}-worker-{pool}"
    wait_until(lambda: apps.read_namespaced_deployment(deployment, namespace), what="worker")
    wait_until(lambda: read_cluster(api, namespace, name).get("status", {}).get("pools"))
    assert replicas(apps, namespace, deployment) == 0

    await queue.ensure_group(redis, pool)
    for i in range(7):  # 7 entries at 2 per worker: 4 workers
        await queue.enqueue(redis, pool=pool, token=f"token-{i}")
    crossed = time.monotonic()
    wait_until(lambda: replicas(apps, namespace, deployment) == 4, timeout=5, what="4 workers")
    assert time.monotonic() - crossed < 2.0
    status = wait_until(
        lambda: (
            read_cluster(api, namespace, name)["status"]["pools"][pool].get("lastDecision")
            and read_cluster(api, namespace, name)["status"]["pools"][pool]
        ),
        what="the decision in status",
    )
    assert status["lastDecision"]["from"] == 0 and status["lastDecision"]["to"] == 4
    assert "scale up 0 -> 4" in status["lastDecision"]["reason"]
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}")
    assert any(e.reason == "ScaledUp" and "0 -> 4" in e.message for e in events.items)

    pods = wait_until(
        lambda: len(p := worker_pods(core, namespace, name, pool)) == 4 and p, what="4 pods"
    )
    busy = sorted(pod.metadata.name for pod in pods)[1:3]
    idle = [pod.metadata.name for pod in pods if pod.metadata.name not in busy]
    # The queue drains: two workers are still judging, the other two idle.
    for pod in busy:
        await heartbeat(redis, pool=pool, pod=pod, busy=True)
    for pod in idle:
        await heartbeat(redis, pool=pool, pod=pod, busy=False)
    await redis.delete(protocol.queue_stream(pool))
    drained = time.monotonic()

    wait_until(lambda: replicas(apps, namespace, deployment) == 2, timeout=10, what="down to 2")
    assert time.monotonic() - drained >= 3.0  # not before the scale-down delay
    left = wait_until(
        lambda: len(p := worker_pods(core, namespace, name, pool)) == 2 and p, what="2 pods left"
    )
    assert sorted(pod.metadata.name for pod in left) == busy  # the idle ones went
    for pod in left:
        cost = pod.metadata.annotations["controller.kubernetes.io/pod-deletion-cost"]
        assert int(cost) > 0
    costs = {p.metadata.name: p.metadata.annotations for p in left}
    assert all(int(a["controller.kubernetes.io/pod-deletion-cost"]) >= 1000 for a in costs.values())

    # The last submissions finish: the pool goes to zero without a second delay.
    for pod in busy:
        await heartbeat(redis, pool=pool, pod=pod, busy=False)
    wait_until(lambda: replicas(apps, namespace, deployment) == 0, timeout=5, what="down to 0")


def test_metrics_report_each_pool(operator: int) -> None:
    text = http_get(f"http://127.0.0.1:{operator}/metrics").decode()
    for metric in ("backlog", "busy_workers", "desired_replicas", "current_replicas",
                   "min_replicas", "max_replicas", "scalings_total"):  # fmt: skip
        assert f"kubejudge_pool_{metric}{{" in text


def test_redis_unreachable_keeps_the_size_and_recovers(
    api: client.ApiClient, namespace: str, redis_server: localservices.LocalServer
) -> None:
    core = client.CoreV1Api(api)
    secret = f"flaky-{uuid.uuid4().hex[:6]}"
    dead = f"redis://127.0.0.1:{localservices.free_port()}/0"
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=secret),
            string_data={"url": "not a redis url", "jwt": "x" * 40},
        ),
    )
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JudgeCluster",
        "metadata": {"name": f"flaky-{uuid.uuid4().hex[:4]}"},
        "spec": {
            "images": {"api": "kj/api:1", "worker": "kj/worker:1", "gateway": "kj/gateway:1"},
            "redis": {"urlSecretRef": {"name": secret, "key": "url"}},
            "postgresql": {"urlSecretRef": {"name": secret, "key": "url"}},
            "jwtSecretRef": {"name": secret, "key": "jwt"},
            "workerPools": [{"name": "flaky", "languages": ["*"], "minReplicas": 2,
                             "scaleDownDelaySeconds": 0}],
        },
    }  # fmt: skip
    name = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body
    )["metadata"]["name"]
    apps = client.AppsV1Api(api)

    def condition(kind: str) -> dict[str, str] | None:
        status = read_cluster(api, namespace, name).get("status", {})
        return next((c for c in status.get("conditions", []) if c["type"] == kind), None)

    wait_until(
        lambda: (c := condition("RedisReachable")) and c["reason"] == "BadRedisURL",
        what="RedisReachable=False for a bad URL",
    )
    core.patch_namespaced_secret(secret, namespace, {"stringData": {"url": dead}})
    down = wait_until(
        lambda: (c := condition("RedisReachable")) and c["reason"] == "RedisUnreachable" and c,
        timeout=RECONCILE_S * 5,
        what="RedisReachable=False for a dead Redis",
    )
    assert down["status"] == "False"
    assert "keeping pool sizes" in down["message"]
    time.sleep(POLL_S * 2)
    assert replicas(apps, namespace, f"{name}-worker-flaky") == 2  # kept, not zeroed

    core.patch_namespaced_secret(secret, namespace, {"stringData": {"url": redis_server.url}})
    wait_until(
        lambda: (c := condition("RedisReachable")) and c["status"] == "True",
        timeout=RECONCILE_S * 5,
        what="RedisReachable=True again",
    )


def test_deleting_the_cluster_removes_everything(
    api: client.ApiClient, namespace: str, cluster: Callable[..., dict[str, Any]]
) -> None:
    name = cluster()["metadata"]["name"]
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    wait_until(lambda: apps.read_namespaced_deployment(f"{name}-worker-default", namespace))
    selector = f"app.kubernetes.io/instance={name}"
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )

    def gone() -> bool:
        left = [
            *apps.list_namespaced_deployment(namespace, label_selector=selector).items,
            *apps.list_namespaced_stateful_set(namespace, label_selector=selector).items,
            *core.list_namespaced_service(namespace, label_selector=selector).items,
            *core.list_namespaced_config_map(namespace, label_selector=selector).items,
            *core.list_namespaced_secret(namespace, label_selector=selector).items,
            *client.PolicyV1Api(api)
            .list_namespaced_pod_disruption_budget(namespace, label_selector=selector)
            .items,
            *client.NetworkingV1Api(api)
            .list_namespaced_network_policy(namespace, label_selector=selector)
            .items,
        ]
        return not left

    wait_until(gone, timeout=60, what="every child garbage-collected")
    with pytest.raises(ApiException) as missing:
        read_cluster(api, namespace, name)
    assert missing.value.status == 404
