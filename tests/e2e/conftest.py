"""The README's Kubernetes path, end to end, on a real node built here (tests/node/): the images
`make images` builds, loaded into the node's containerd; `helm install` of charts/kubejudge (the
operator as a pod, under the chart's ServiceAccount and RBAC); `kubectl apply -f
examples/judgecluster.yaml` as shipped. Nothing of the judge runs on the host.

The test modules run in the order of their numbers, on one installation: install, judging,
scaling, faults, uninstall.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from kubejudge_operator.resources.stores import REDIS_PORT
from node import fixture as nodefixture  # tests/ is on sys.path, as for support
from support import images as support_images
from support.polling import wait_until

from kubejudge.wellknown import API_PORT, GATEWAY_PORT
from tests.e2e.judge import Judge, service_ip
from tests.e2e.prometheus import Scraper, scraping

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "kubejudge"
EXAMPLE = ROOT / "examples" / "judgecluster.yaml"
# The README's names: `helm install kubejudge charts/kubejudge -n kubejudge --create-namespace`.
RELEASE = "kubejudge"
NAMESPACE = "kubejudge"


@pytest.fixture(scope="session")
def images(cluster: nodefixture.Cluster) -> None:
    """The images in the node's containerd (already built: only the import is left)."""
    support_images.make_images(cluster_dir=cluster.state_dir)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where the e2e tier keeps its reports and plots (CI prints the path; kept after the run)."""
    path = Path(os.environ.get("KUBEJUDGE_E2E_ARTIFACTS", ROOT / ".e2e-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def helm(cluster: nodefixture.Cluster) -> Callable[..., str]:
    def run(*args: str) -> str:
        result = subprocess.run(
            [str(cluster.bin_dir / "helm"), *args], capture_output=True, text=True,
            timeout=300, check=False, env=cluster.env(),
        )  # fmt: skip
        assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    return run


@pytest.fixture(scope="session")
def operator_release(
    cluster: nodefixture.Cluster, images: None, helm: Callable[..., str]
) -> Iterator[str]:
    # As the README (and scripts/kind.sh) install locally built images: the chart's default tag
    # is its appVersion, what a release publishes; `make images` tags them `dev`.
    helm(
        "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "--wait", "--timeout", "3m", "--set", f"images.operator.tag={support_images.TAG}",
    )  # fmt: skip
    yield RELEASE
    # test_5 tears down; after a failure this does instead (and may find nothing to do): the
    # JudgeClusters first, while the operator still runs to remove its finalizer, then the chart.
    cluster.kubectl(
        "delete",
        "judgeclusters",
        "--all",
        "-n",
        NAMESPACE,
        "--timeout=180s",
        check=False,
        timeout=200,
    )
    subprocess.run(
        [str(cluster.bin_dir / "helm"), "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait"],
        capture_output=True, timeout=180, check=False, env=cluster.env(),
    )  # fmt: skip
    cluster.kubectl("delete", "namespace", NAMESPACE, "--timeout=180s", check=False, timeout=200)


@pytest.fixture(scope="session")
def judge(cluster: nodefixture.Cluster, operator_release: str) -> Judge:
    """examples/judgecluster.yaml applied as shipped, with api, gateway and the managed stores
    Ready, and the JudgeCluster saying so."""
    cluster.kubectl("apply", "-n", NAMESPACE, "-f", str(EXAMPLE))
    documents = list(yaml.safe_load_all(EXAMPLE.read_text()))
    (secret,) = [d for d in documents if d["kind"] == "Secret"]
    (resource,) = [d for d in documents if d["kind"] == "JudgeCluster"]
    api_client = cluster.admin_api_client()
    name = resource["metadata"]["name"]
    judge = Judge(
        namespace=NAMESPACE,
        name=name,
        kubeconfig=cluster.kubeconfig,
        kubectl_bin=str(cluster.bin_dir / "kubectl"),
        api_client=api_client,
        api_url="",
        gateway_url="",
        redis_url="",
        jwt_secret=secret["stringData"]["key"],
    )
    wait_until(
        lambda: judge.status().get("conditions") and judge.conditions().get("Ready") == "True",
        timeout=300,
        interval=1,
        what="the JudgeCluster Ready (api, gateway and Redis up)",
    )
    for component in ("postgresql", "redis"):
        wait_until(lambda c=component: judge.ready_pods(c), timeout=120, what=component)

    def address(component: str) -> str:
        return service_ip(api_client, NAMESPACE, f"{name}-{component}")

    return dataclasses.replace(
        judge,
        api_url=f"http://{address('api')}:{API_PORT}",
        gateway_url=f"ws://{address('gateway')}:{GATEWAY_PORT}",
        redis_url=f"redis://{address('redis')}:{REDIS_PORT}/0",
    )


@pytest.fixture(scope="session")
def prometheus(judge: Judge, helm: Callable[..., str], artifacts: Path) -> Iterator[Scraper]:
    """Prometheus on loopback scraping the installed judge as the chart's PodMonitor and
    ServiceMonitor describe it (rendered for this release), with its PrometheusRule loaded."""
    rendered = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--set", "metrics.podMonitor.enabled=true", "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "prometheusRule.enabled=true",
    )  # fmt: skip
    objects = [o for o in yaml.safe_load_all(rendered) if o]
    with scraping(objects, judge.api_client, log=artifacts / "prometheus.log") as scraper:
        yield scraper
