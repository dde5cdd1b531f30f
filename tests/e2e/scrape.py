"""What the chart's PodMonitor and ServiceMonitor ask the Prometheus operator to scrape, as a
plain Prometheus's file_sd target groups.

Debian's Prometheus has no Kubernetes service discovery, so the e2e tier lists the pods (and
the Services' Endpoints) itself and writes the targets the operator's generated relabelling
would keep, with the target labels it would set (prometheus-operator pkg/prometheus/promcfg.go):
- PodMonitor: one job per podMetricsEndpoint; pods matching the selector in the selected
  namespaces, Failed/Succeeded ones dropped, each container port named as the endpoint's `port`;
  labels namespace, container, pod, job=`<monitor namespace>/<monitor name>`, endpoint=<port>.
- ServiceMonitor: Services matching the selector, each Endpoints address on the endpoint's port
  name; labels namespace, service, pod, container, job=<service name>, endpoint=<port>.
`instance` is the address, as Prometheus sets it by default. Everything here is pure: the
listings come in as the API's JSON (kubectl -o json).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Object = Mapping[str, Any]
TargetGroup = dict[str, Any]  # {"targets": ["ip:port"], "labels": {...}}


@dataclass(frozen=True, slots=True)
class ScrapeJob:
    """One endpoint of one monitor: one Prometheus scrape job (the operator names it alike)."""

    name: str  # podMonitor/<namespace>/<name>/<i> or serviceMonitor/...
    kind: str  # PodMonitor or ServiceMonitor
    monitor: Object
    port: str
    path: str
    honor_labels: bool

    @property
    def sd_file(self) -> str:
        return self.name.replace("/", "_") + ".json"


def scrape_jobs(objects: Iterable[Object]) -> list[ScrapeJob]:
    """The scrape jobs of every PodMonitor and ServiceMonitor among rendered chart objects."""
    jobs = []
    for obj in objects:
        key = {"PodMonitor": "podMetricsEndpoints", "ServiceMonitor": "endpoints"}.get(obj["kind"])
        if key is None:
            continue
        meta = obj["metadata"]
        for i, endpoint in enumerate(obj["spec"][key]):
            jobs.append(
                ScrapeJob(
                    name=f"{obj['kind'][0].lower()}{obj['kind'][1:]}/{meta['namespace']}/"
                    f"{meta['name']}/{i}",
                    kind=obj["kind"],
                    monitor=obj,
                    port=endpoint["port"],
                    path=endpoint.get("path", "/metrics"),
                    honor_labels=bool(endpoint.get("honorLabels", False)),
                )
            )
    return jobs


def matches(selector: Object, labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        present = key in labels
        ok = {
            "In": present and labels.get(key) in values,
            "NotIn": not (present and labels.get(key) in values),
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not ok:
            return False
    return True


def _in_namespaces(monitor: Object, namespace: str) -> bool:
    chosen = monitor["spec"].get("namespaceSelector", {})
    if chosen.get("any"):
        return True
    names = chosen.get("matchNames")
    return namespace in names if names else namespace == monitor["metadata"]["namespace"]


def pod_targets(job: ScrapeJob, pods: Iterable[Object]) -> list[TargetGroup]:
    monitor = job.monitor
    groups = []
    for pod in pods:
        meta, status = pod["metadata"], pod.get("status", {})
        if status.get("phase") in ("Failed", "Succeeded") or not status.get("podIP"):
            continue
        if not _in_namespaces(monitor, meta["namespace"]):
            continue
        if not matches(monitor["spec"]["selector"], meta.get("labels", {})):
            continue
        for container in pod["spec"]["containers"]:
            for port in container.get("ports", []):
                if port.get("name") != job.port:
                    continue
                groups.append(
                    {
                        "targets": [f"{status['podIP']}:{port['containerPort']}"],
                        "labels": {
                            "namespace": meta["namespace"],
                            "container": container["name"],
                            "pod": meta["name"],
                            "job": f"{monitor['metadata']['namespace']}/"
                            f"{monitor['metadata']['name']}",
                            "endpoint": job.port,
                        },
                    }
                )
    return groups


def service_targets(
    job: ScrapeJob, services: Iterable[Object], endpoints: Iterable[Object], pods: Iterable[Object]
) -> list[TargetGroup]:
    monitor = job.monitor
    by_name = {(e["metadata"]["namespace"], e["metadata"]["name"]): e for e in endpoints}
    pods_by_name = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}
    groups = []
    for service in services:
        meta = service["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if not _in_namespaces(monitor, namespace):
            continue
        if not matches(monitor["spec"]["selector"], meta.get("labels", {})):
            continue
        for subset in by_name.get((namespace, name), {}).get("subsets", []) or []:
            ports = [p for p in subset.get("ports", []) if p.get("name") == job.port]
            for port in ports:
                for address in subset.get("addresses", []) or []:
                    labels = {
                        "namespace": namespace,
                        "service": name,
                        "job": name,
                        "endpoint": job.port,
                    }
                    ref = address.get("targetRef") or {}
                    pod = pods_by_name.get((namespace, ref.get("name", "")))
                    if ref.get("kind") == "Pod" and pod is not None:
                        if pod.get("status", {}).get("phase") in ("Failed", "Succeeded"):
                            continue
                        labels["pod"] = ref["name"]
                        labels["container"] = _container_with_port(pod, port["port"])
                    address_port = f"{address['ip']}:{port['port']}"
                    groups.append({"targets": [address_port], "labels": labels})
    return groups


def _container_with_port(pod: Object, number: int) -> str:
    for container in pod["spec"]["containers"]:
        if any(p.get("containerPort") == number for p in container.get("ports", [])):
            return str(container["name"])
    return ""


def targets(
    job: ScrapeJob, *, pods: list[Object], services: list[Object], endpoints: list[Object]
) -> list[TargetGroup]:
    if job.kind == "PodMonitor":
        return pod_targets(job, pods)
    return service_targets(job, services, endpoints, pods)


def prometheus_config(
    jobs: Iterable[ScrapeJob], *, sd_dir: str, rule_files: list[str], interval: str
) -> dict[str, Any]:
    """A Prometheus configuration that scrapes each job from its file_sd file. The interval is
    the caller's (the monitors' own 15 s would smooth a one-minute burst away)."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": rule_files,
        "scrape_configs": [
            {
                "job_name": job.name,
                "metrics_path": job.path,
                "honor_labels": job.honor_labels,
                "scrape_timeout": interval,
                "file_sd_configs": [
                    {"files": [f"{sd_dir}/{job.sd_file}"], "refresh_interval": interval}
                ],
            }
            for job in jobs
        ],
    }
