"""`helm install` and `kubectl apply -f examples/judgecluster.yaml`, as the README says: the
operator runs as a pod under the chart's ServiceAccount, and the api, gateway, managed Redis (AOF
on a bound volume) and PostgreSQL come up Ready in pods."""

from __future__ import annotations

import httpx
from kubernetes import client
from support.polling import wait_until

from tests.e2e.judge import Judge, is_ready

FORBIDDEN = ("Forbidden", "forbidden")


def test_the_operator_runs_in_a_pod_as_the_charts_service_account(
    judge: Judge, operator_release: str
) -> None:
    (pod,) = [
        p
        for p in client.CoreV1Api(judge.api_client)
        .list_namespaced_pod(judge.namespace, label_selector="app.kubernetes.io/component=operator")
        .items
    ]
    assert is_ready(pod)
    account = client.CoreV1Api(judge.api_client).read_namespaced_service_account(
        pod.spec.service_account_name, judge.namespace
    )
    assert account.metadata.labels["app.kubernetes.io/managed-by"] == "Helm"
    assert account.metadata.labels["app.kubernetes.io/instance"] == operator_release
    logs = judge.kubectl("logs", pod.metadata.name)
    refused = [line for line in logs.splitlines() if any(word in line for word in FORBIDDEN)]
    assert not refused, "the chart's RBAC refused the operator:\n" + "\n".join(refused[:20])
    # It reached the cluster's Redis from inside the cluster and says so in status.
    assert judge.conditions().items() >= {"Reconciled": "True", "RedisReachable": "True"}.items()


def test_every_component_of_the_example_is_ready_in_pods(judge: Judge) -> None:
    # Ready says each Deployment serves (one available replica, as Kubernetes' own Available
    # does); the second replica of each may still be starting.
    for component, count in (("api", 2), ("gateway", 2), ("redis", 1), ("postgresql", 1)):
        wait_until(
            lambda c=component, n=count: len(judge.ready_pods(c)) == n,
            timeout=120,
            interval=1,
            what=f"{count} ready {component} pod(s)",
        )
    assert judge.conditions()["Ready"] == "True"
    # The warm JVM pool keeps its one worker; the general pool sleeps at zero.
    assert len(judge.ready_pods("worker", "jvm")) == 1
    assert judge.replicas("general") == 0


def test_the_managed_redis_appends_to_a_bound_volume(judge: Judge) -> None:
    (pod,) = judge.pods("redis")
    claims = [
        v.persistent_volume_claim.claim_name for v in pod.spec.volumes if v.persistent_volume_claim
    ]
    assert claims, "the Redis pod has no PersistentVolumeClaim"
    core = client.CoreV1Api(judge.api_client)
    for claim in claims:
        assert (
            core.read_namespaced_persistent_volume_claim(claim, judge.namespace).status.phase
            == "Bound"
        )
    name = pod.metadata.name
    assert judge.kubectl(
        "exec", name, "--", "redis-cli", "CONFIG", "GET", "appendonly"
    ).split() == [
        "appendonly",
        "yes",
    ]
    data_dir = judge.kubectl("exec", name, "--", "redis-cli", "CONFIG", "GET", "dir").split()[1]
    mounts = [m.mount_path for m in pod.spec.containers[0].volume_mounts]
    assert data_dir in mounts, f"AOF goes to {data_dir}, not to the volume ({mounts})"
    judge.kubectl("exec", name, "--", "redis-cli", "SET", "e2e:aof-probe", "1")
    listing = judge.kubectl("exec", name, "--", "ls", "-R", data_dir)
    assert ".aof" in listing, listing


def test_the_api_answers_through_its_service(judge: Judge) -> None:
    about = httpx.get(f"{judge.api_url}/about", timeout=10)
    assert about.status_code == 200 and "version" in about.json()
    languages = httpx.get(f"{judge.api_url}/languages", timeout=10).json()
    assert {language["id"] for language in languages} >= {48, 52, 60, 62, 63, 71, 73}
