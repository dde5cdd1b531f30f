"""The chart's PodMonitor and ServiceMonitor, read the way the Prometheus operator reads them
(tests/e2e/scrape.py), select what they claim: the api, gateway and worker pods the operator
builds (and not its Redis or PostgreSQL), on the ports those pods name, and the operator behind
its metrics Service, under the job the KubejudgeOperatorDown alert asks `up` for."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from kubejudge_operator.resources.children import build_children
from kubejudge_operator.spec import ClusterSpec, Owner

from kubejudge.wellknown import API_PORT, GATEWAY_PORT, WORKER_METRICS_PORT
from tests.chart.paths import REPO, Render
from tests.e2e.scrape import matches, prometheus_config, scrape_jobs, targets

OWNER = Owner(name="judge", namespace="contest", uid="0b8e-uid")
MONITORING = {
    "metrics.podMonitor.enabled": "true",
    "metrics.serviceMonitor.enabled": "true",
    "prometheusRule.enabled": "true",
}


def running(obj: dict[str, Any], name: str, ip: str) -> dict[str, Any]:
    """A Running pod of a Deployment or StatefulSet, as the API lists it."""
    template = obj["spec"]["template"]
    return {
        "metadata": {"name": name, "namespace": obj["metadata"]["namespace"],
                     "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
        "status": {"phase": "Running", "podIP": ip},
    }  # fmt: skip


@pytest.fixture(scope="module")
def chart(render: Render) -> list[dict[str, Any]]:
    return render(namespace="judges", **MONITORING)


@pytest.fixture(scope="module")
def judge_pods() -> list[dict[str, Any]]:
    example = [d for d in yaml.safe_load_all((REPO / "examples/judgecluster.yaml").read_text())]
    (resource,) = [d for d in example if d["kind"] == "JudgeCluster"]
    spec = ClusterSpec.model_validate(resource["spec"])
    workloads = [
        c for c in build_children(OWNER, spec) if c["kind"] in ("Deployment", "StatefulSet")
    ]
    return [
        running(w, f"{w['metadata']['name']}-0", f"10.244.0.{10 + i}")
        for i, w in enumerate(workloads)
    ]


def test_the_pod_monitor_scrapes_api_gateway_and_every_worker_pod_on_its_named_port(
    chart: list[dict[str, Any]], judge_pods: list[dict[str, Any]]
) -> None:
    jobs = [j for j in scrape_jobs(chart) if j.kind == "PodMonitor"]
    found = {
        (group["labels"]["pod"], group["labels"]["endpoint"], group["targets"][0].split(":")[1])
        for job in jobs
        for group in targets(job, pods=judge_pods, services=[], endpoints=[])
    }
    components = {
        p["metadata"]["name"]: p["metadata"]["labels"]["app.kubernetes.io/component"]
        for p in judge_pods
    }
    scraped = {components[pod] for pod, _, _ in found}
    assert scraped == {"api", "gateway", "worker"}, found  # never the managed stores
    workers = [p for p in judge_pods if components[p["metadata"]["name"]] == "worker"]
    assert {pod for pod, _, _ in found} >= {p["metadata"]["name"] for p in workers}
    for pod, endpoint, port in found:
        expected = {"worker": ("metrics", str(WORKER_METRICS_PORT)),
                    "api": ("http", str(API_PORT)),
                    "gateway": ("http", str(GATEWAY_PORT))}[components[pod]]  # fmt: skip
        assert (endpoint, port) == expected, pod
    group = targets(jobs[0], pods=judge_pods, services=[], endpoints=[])[0]
    assert set(group["labels"]) == {"namespace", "container", "pod", "job", "endpoint"}
    assert group["labels"]["job"] == "judges/kj-kubejudge-judges"


def test_finished_pods_and_pods_without_an_address_are_not_scraped(
    chart: list[dict[str, Any]], judge_pods: list[dict[str, Any]]
) -> None:
    (job,) = [j for j in scrape_jobs(chart) if j.kind == "PodMonitor" and j.port == "metrics"]
    worker = next(
        p for p in judge_pods if p["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    )
    for status in ({"phase": "Succeeded", "podIP": "10.244.0.99"}, {"phase": "Pending"}):
        assert targets(job, pods=[worker | {"status": status}], services=[], endpoints=[]) == []


def test_the_service_monitor_scrapes_the_operator_under_the_job_its_alert_watches(
    chart: list[dict[str, Any]],
) -> None:
    (job,) = [j for j in scrape_jobs(chart) if j.kind == "ServiceMonitor"]
    assert job.honor_labels  # the operator's own namespace label stays
    (service,) = [
        o for o in chart if o["kind"] == "Service" and "operator" in o["metadata"]["name"]
    ]
    (deployment,) = [o for o in chart if o["kind"] == "Deployment"]
    pod = running(deployment, "kj-kubejudge-operator-abc", "10.244.0.7")
    port = service["spec"]["ports"][0]
    address = {"ip": "10.244.0.7", "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"]}}
    endpoints = {
        "metadata": service["metadata"],
        "subsets": [
            {"addresses": [address], "ports": [{"name": port["name"], "port": port["port"]}]}
        ],
    }
    (group,) = targets(job, pods=[pod], services=[service], endpoints=[endpoints])
    assert group["targets"] == [f"10.244.0.7:{port['port']}"]
    labels = group["labels"]
    assert labels["service"] == labels["job"] == service["metadata"]["name"]
    assert labels["namespace"] == "judges" and labels["pod"] == pod["metadata"]["name"]
    (rule,) = [o for o in chart if o["kind"] == "PrometheusRule"]
    (down,) = [
        r
        for g in rule["spec"]["groups"]
        for r in g["rules"]
        if r["alert"] == "KubejudgeOperatorDown"
    ]
    wanted = dict(re.findall(r'(\w+)="([^"]*)"', down["expr"]))
    assert wanted == {"job": labels["job"], "namespace": labels["namespace"]}, down["expr"]


def test_label_selectors_as_kubernetes_reads_them() -> None:
    selector = {
        "matchLabels": {"app": "kj"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert matches(selector, {"app": "kj", "tier": "a"})
    assert not matches(selector, {"app": "kj", "tier": "c"})
    assert not matches(selector, {"app": "kj", "tier": "a", "canary": "1"})
    assert not matches(selector, {"tier": "a"})


def test_one_scrape_job_per_monitor_endpoint_each_reading_its_own_file(
    chart: list[dict[str, Any]],
) -> None:
    jobs = scrape_jobs(chart)
    config = prometheus_config(jobs, sd_dir="/sd", rule_files=["rules.yaml"], interval="1s")
    names = [c["job_name"] for c in config["scrape_configs"]]
    assert names == [
        "podMonitor/judges/kj-kubejudge-judges/0",
        "podMonitor/judges/kj-kubejudge-judges/1",
        "serviceMonitor/judges/kj-kubejudge-operator/0",
    ]
    assert len({c["file_sd_configs"][0]["files"][0] for c in config["scrape_configs"]}) == 3
