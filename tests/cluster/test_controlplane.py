"""Smoke tests of the real control plane (tests/controlplane): no mocks, every request goes to a
real kube-apiserver backed by etcd, with the real controller manager, scheduler and kwok nodes."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from support.polling import wait_until

if TYPE_CHECKING:
    from tests.controlplane.fixture import ControlPlane


@pytest.fixture(scope="module")
def api(controlplane: ControlPlane) -> client.ApiClient:
    return controlplane.admin_api_client()


def _labels() -> dict[str, str]:
    return {"app": f"smoke-{uuid.uuid4().hex[:6]}"}


def _deployment(name: str, labels: dict[str, str], replicas: int) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="busybox:1.36")]
                ),
            ),
        ),
    )


def _running_pods(core: client.CoreV1Api, ns: str, labels: dict[str, str]) -> list[client.V1Pod]:
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    return [
        p
        for p in pods
        if p.metadata.deletion_timestamp is None
        and p.status.phase == "Running"
        and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]


def test_kubectl_version_and_api_resources(controlplane: ControlPlane) -> None:
    out = controlplane.kubectl("version", "-o", "json").stdout
    server = json.loads(out)["serverVersion"]
    assert server["gitVersion"].startswith("v1.36."), server
    assert server["major"] == "1" and server["minor"] == "36", server

    resources = controlplane.kubectl("api-resources", "-o", "name").stdout.split()
    for name in (
        "pods",
        "deployments.apps",
        "customresourcedefinitions.apiextensions.k8s.io",
        "roles.rbac.authorization.k8s.io",
        "leases.coordination.k8s.io",
    ):
        assert name in resources

    nodes = controlplane.kubectl("get", "nodes", "-o", "json").stdout
    assert any(n["metadata"]["name"].startswith("kwok-node-") for n in json.loads(nodes)["items"])


def test_crd_established_and_validates(api: client.ApiClient, k8s_namespace: str) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.kubejudge.test"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1, "maximum": 10}
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(crd)
    try:

        def established() -> bool:
            conds = ext.read_custom_resource_definition(f"widgets.{group}").status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conds)

        wait_until(established, timeout=30, what="CRD Established")
        co = client.CustomObjectsApi(api)

        def create(size: object) -> dict:
            return co.create_namespaced_custom_object(
                group,
                "v1",
                k8s_namespace,
                "widgets",
                {
                    "apiVersion": f"{group}/v1",
                    "kind": "Widget",
                    "metadata": {"name": f"w-{uuid.uuid4().hex[:6]}"},
                    "spec": {"size": size},
                },
            )

        # the discovery of a brand-new group can lag a moment behind Established
        good = wait_until(lambda: create(3), timeout=30, what="valid CR accepted")
        assert good["spec"]["size"] == 3

        for bad in (42, "three"):
            with pytest.raises(ApiException) as err:
                create(bad)
            assert err.value.status == 422, err.value.body
            assert "spec.size" in err.value.body
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")


def test_deployment_pods_become_running(api: client.ApiClient, k8s_namespace: str) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    labels = _labels()
    apps.create_namespaced_deployment(k8s_namespace, _deployment("web", labels, 3))

    wait_until(
        lambda: len(_running_pods(core, k8s_namespace, labels)) == 3,
        timeout=60,
        what="3 Running pods",
    )
    pods = _running_pods(core, k8s_namespace, labels)
    assert all(p.spec.node_name and p.spec.node_name.startswith("kwok-node-") for p in pods)
    assert all(p.status.pod_ip for p in pods)
    wait_until(
        lambda: (
            (
                apps.read_namespaced_deployment_status(
                    "web", k8s_namespace
                ).status.available_replicas
                or 0
            )
            == 3
        ),
        timeout=60,
        what="Deployment available",
    )


def test_garbage_collector_deletes_dependents(api: client.ApiClient, k8s_namespace: str) -> None:
    core = client.CoreV1Api(api)
    owner = core.create_namespaced_config_map(
        k8s_namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"), data={"a": "1"}),
    )
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
    )
    for i in range(2):
        core.create_namespaced_secret(
            k8s_namespace,
            client.V1Secret(
                metadata=client.V1ObjectMeta(name=f"dependent-{i}", owner_references=[ref]),
                string_data={"k": "v"},
            ),
        )
    core.create_namespaced_secret(
        k8s_namespace,
        client.V1Secret(metadata=client.V1ObjectMeta(name="unrelated"), string_data={"k": "v"}),
    )

    core.delete_namespaced_config_map(
        "owner", k8s_namespace, body=client.V1DeleteOptions(propagation_policy="Background")
    )

    def dependents_gone() -> bool:
        names = {s.metadata.name for s in core.list_namespaced_secret(k8s_namespace).items}
        return not names & {"dependent-0", "dependent-1"} and "unrelated" in names

    wait_until(dependents_gone, timeout=60, what="garbage collection of dependents")

    # foreground deletion of a Deployment removes its ReplicaSet and Pods too
    apps = client.AppsV1Api(api)
    labels = _labels()
    apps.create_namespaced_deployment(k8s_namespace, _deployment("gc", labels, 1))
    wait_until(lambda: _running_pods(core, k8s_namespace, labels), timeout=60, what="pod running")
    apps.delete_namespaced_deployment(
        "gc", k8s_namespace, body=client.V1DeleteOptions(propagation_policy="Foreground")
    )
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    wait_until(
        lambda: (
            not apps.list_namespaced_replica_set(k8s_namespace, label_selector=selector).items
            and not core.list_namespaced_pod(k8s_namespace, label_selector=selector).items
        ),
        timeout=60,
        what="ReplicaSet and Pods garbage-collected",
    )


def test_serviceaccount_rbac(
    controlplane: ControlPlane, api: client.ApiClient, k8s_namespace: str
) -> None:
    kubeconfig = controlplane.serviceaccount_kubeconfig(k8s_namespace, "reader")
    as_sa = client.CoreV1Api(controlplane.api_client_for(kubeconfig))

    with pytest.raises(ApiException) as err:
        as_sa.list_namespaced_pod(k8s_namespace)
    assert err.value.status == 403
    assert f"system:serviceaccount:{k8s_namespace}:reader" in err.value.body

    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        k8s_namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name="pod-reader"),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""], resources=["pods"], verbs=["get", "list", "watch"]
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        k8s_namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="reader-pod-reader"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="pod-reader"
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name="reader", namespace=k8s_namespace)
            ],
        ),
    )

    wait_until(
        lambda: as_sa.list_namespaced_pod(k8s_namespace) is not None,
        timeout=30,
        what="RBAC allows the ServiceAccount",
    )
    # still scoped: other namespaces and other verbs stay forbidden
    with pytest.raises(ApiException) as err:
        as_sa.list_namespaced_pod("default")
    assert err.value.status == 403
    with pytest.raises(ApiException) as err:
        as_sa.delete_collection_namespaced_pod(k8s_namespace)
    assert err.value.status == 403

    # kubectl with the ServiceAccount kubeconfig sees the same
    assert (
        controlplane.kubectl(
            "auth", "can-i", "list", "pods", kubeconfig=kubeconfig, check=False
        ).stdout.strip()
        == "yes"
    )
    assert (
        controlplane.kubectl(
            "auth", "can-i", "create", "pods", kubeconfig=kubeconfig, check=False
        ).stdout.strip()
        == "no"
    )


def test_replicaset_scale_down_honours_pod_deletion_cost(
    api: client.ApiClient, k8s_namespace: str
) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    labels = _labels()
    rs = client.V1ReplicaSet(
        metadata=client.V1ObjectMeta(name="workers"),
        spec=client.V1ReplicaSetSpec(
            replicas=4,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="w", image="busybox:1.36")]
                ),
            ),
        ),
    )
    apps.create_namespaced_replica_set(k8s_namespace, rs)
    pods = wait_until(
        lambda: len(p := _running_pods(core, k8s_namespace, labels)) == 4 and p,
        timeout=60,
        what="4 Running pods",
    )
    # A cost order unrelated to the pods' names/ages; scaling down one step at a time must always
    # remove the cheapest remaining pod (4! orders, so a controller ignoring the cost passes by luck
    # with probability 1/24).
    names = sorted(p.metadata.name for p in pods)
    costs = dict(zip(names, (250, -10, 1000, 40), strict=True))
    for name, cost in costs.items():
        core.patch_namespaced_pod(
            name,
            k8s_namespace,
            {
                "metadata": {
                    "annotations": {"controller.kubernetes.io/pod-deletion-cost": str(cost)}
                }
            },
        )
    by_cost = sorted(names, key=costs.__getitem__)
    # the ReplicaSet controller ranks pods from its informer cache: let the annotations reach it
    # before the scale event does (the two arrive over different watches)
    time.sleep(1)

    for replicas in (3, 2, 1):
        apps.patch_namespaced_replica_set_scale(
            "workers", k8s_namespace, {"spec": {"replicas": replicas}}
        )

        def alive(n: int = replicas) -> set[str]:
            pods = core.list_namespaced_pod(
                k8s_namespace, label_selector=",".join(f"{k}={v}" for k, v in labels.items())
            ).items
            left = {p.metadata.name for p in pods if p.metadata.deletion_timestamp is None}
            return left if len(left) == n else set()

        expected = set(by_cost[4 - replicas :])
        assert wait_until(alive, timeout=60, what=f"scale down to {replicas}") == expected


def test_helm_install_waits_for_ready_pods(
    controlplane: ControlPlane, k8s_namespace: str, tmp_path
) -> None:
    helm = str(controlplane.bin_dir / "helm")
    env = controlplane.env()
    env["HELM_CACHE_HOME"] = str(tmp_path / "helm-cache")
    env["HELM_CONFIG_HOME"] = str(tmp_path / "helm-config")
    env["HELM_DATA_HOME"] = str(tmp_path / "helm-data")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [helm, *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )

    run("create", "demo")
    run("install", "demo", "./demo", "-n", k8s_namespace, "--wait", "--timeout", "60s")
    status = json.loads(run("status", "demo", "-n", k8s_namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    deploy = json.loads(
        controlplane.kubectl("-n", k8s_namespace, "get", "deployment", "demo", "-o", "json").stdout
    )
    assert deploy["status"]["availableReplicas"] == 1
    run("uninstall", "demo", "-n", k8s_namespace, "--wait")
