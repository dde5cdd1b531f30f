"""Tearing it down as the chart README says: delete the JudgeCluster (its children and pods go
with it), then `helm uninstall`. What is left is what the README documents and nothing else: the
CRD, and the managed stores' PersistentVolumeClaims."""

from __future__ import annotations

from collections.abc import Callable

from kubernetes import client
from support.polling import wait_until

from tests.e2e.judge import Judge


def test_deleting_the_judgecluster_and_uninstalling_leaves_only_what_the_chart_documents(
    judge: Judge, operator_release: str, helm: Callable[..., str]
) -> None:
    judge.kubectl("delete", "judgecluster", judge.name, "--wait=true", timeout=180)
    core, apps = client.CoreV1Api(judge.api_client), client.AppsV1Api(judge.api_client)
    children = "app.kubernetes.io/managed-by=kubejudge-operator"
    wait_until(
        lambda: not core.list_namespaced_pod(judge.namespace, label_selector=children).items,
        timeout=180,
        what="every pod of the judge gone",
    )
    assert not apps.list_namespaced_deployment(judge.namespace, label_selector=children).items
    assert not apps.list_namespaced_stateful_set(judge.namespace, label_selector=children).items

    helm("uninstall", operator_release, "--namespace", judge.namespace, "--wait")
    wait_until(
        lambda: not core.list_namespaced_pod(judge.namespace).items,
        timeout=120,
        what="the operator pod gone",
    )
    helm_owned = f"app.kubernetes.io/instance={operator_release},app.kubernetes.io/managed-by=Helm"
    rbac = client.RbacAuthorizationV1Api(judge.api_client)
    left = [
        *apps.list_namespaced_deployment(judge.namespace).items,
        *apps.list_namespaced_stateful_set(judge.namespace).items,
        *core.list_namespaced_service(judge.namespace).items,
        *core.list_namespaced_config_map(judge.namespace, label_selector=helm_owned).items,
        *core.list_namespaced_secret(judge.namespace, label_selector=helm_owned).items,
        *[
            account
            for account in core.list_namespaced_service_account(judge.namespace).items
            if account.metadata.name != "default"
        ],
        *rbac.list_cluster_role(label_selector=helm_owned).items,
        *rbac.list_cluster_role_binding(label_selector=helm_owned).items,
        *rbac.list_namespaced_role_binding(judge.namespace).items,
    ]
    assert not left, [f"{type(o).__name__} {o.metadata.name}" for o in left]
    claims = {
        c.metadata.name for c in core.list_namespaced_persistent_volume_claim(judge.namespace).items
    }
    assert claims == {f"data-{judge.name}-redis-0", f"data-{judge.name}-postgresql-0"}, claims
    client.ApiextensionsV1Api(judge.api_client).read_custom_resource_definition(
        "judgeclusters.kubejudge.dev"
    )
