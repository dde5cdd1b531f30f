"""The real node of tests/node does what a kind node does for this project: each test fails when
one part breaks (kubelet's authentication, the pod network, kube-proxy, CoreDNS, the storage
provisioner, user namespaces, the guard around the host)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from node.fixture import HERE as NODE_DIR
from node.fixture import Cluster
from support.polling import wait_until

pytestmark = pytest.mark.slow

WEB_PAGE = "served-by-web"
# The worker pod's shape (charts/kubejudge): only these three capabilities, no host user ids.
WORKER_SECURITY = {
    "runAsUser": 0,
    "readOnlyRootFilesystem": True,
    "procMount": "Unmasked",
    "seccompProfile": {"type": "Unconfined"},
    "capabilities": {"drop": ["ALL"], "add": ["KILL", "SETGID", "SETUID"]},
}


def pod(cluster: Cluster, name: str, script: str, **spec: object) -> dict[str, object]:
    container = {
        "name": "main",
        "image": cluster.facts["BUSYBOX_IMAGE"],
        "imagePullPolicy": "Never",
        "command": ["/bin/sh", "-c", script],
        **spec.pop("container", {}),  # type: ignore[dict-item]
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [container], **spec},
    }


def apply(cluster: Cluster, namespace: str, *objects: dict[str, object]) -> None:
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)


def wait_phase(
    cluster: Cluster, namespace: str, name: str, phase: str, timeout: float = 60
) -> None:
    def current() -> bool:
        got = cluster.kubectl("get", "pod", "-n", namespace, name, "-o", "jsonpath={.status.phase}")
        return got.stdout == phase

    wait_until(current, timeout=timeout, interval=0.3, what=f"pod {namespace}/{name} {phase}")


# (busybox 1.35's `wget -T` crashes, hence `timeout 5 wget`)
def run_in(cluster: Cluster, namespace: str, name: str, script: str) -> subprocess.CompletedProcess:
    return cluster.kubectl(
        "exec", "-n", namespace, name, "--", "/bin/sh", "-c", script, check=False, timeout=30
    )


@pytest.fixture(scope="module")
def namespace(cluster: Cluster) -> Iterator[str]:
    """A namespace with a client pod to run commands in and a web pod behind Service `web`."""
    name = cluster.namespace("node-smoke")
    web_script = f"mkdir /www && echo {WEB_PAGE} > /www/index.html && exec httpd -f -p 8080 -h /www"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    apply(
        cluster,
        name,
        pod(cluster, "client", "echo client-started; exec sleep 3600"),
        pod(cluster, "web", web_script),
        service,
    )
    wait_phase(cluster, name, "client", "Running")
    wait_phase(cluster, name, "web", "Running")
    yield name
    cluster.delete_namespace(name)


def test_logs_and_exec_reach_the_pod_through_kubelet(cluster: Cluster, namespace: str) -> None:
    logs = cluster.kubectl("logs", "-n", namespace, "client")
    assert logs.stdout.strip() == "client-started"
    hostname = run_in(cluster, namespace, "client", "cat /etc/hostname")
    assert hostname.returncode == 0, hostname.stderr
    assert hostname.stdout.strip() == "client"


def _tls(cluster: Cluster, tmp_path: Path, user: str | None = None) -> ssl.SSLContext:
    """Trusts the cluster CA; with `user`, presents a client certificate the CA signed for it."""
    context = ssl.create_default_context(cafile=cluster.ca_file)
    if user is None:
        return context
    pki = cluster.state_dir / "controlplane" / "pki"
    key, csr, crt = tmp_path / "user.key", tmp_path / "user.csr", tmp_path / "user.crt"
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-subj", f"/CN={user}", "-out", csr],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "x509", "-req", "-in", csr, "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
         "-CAcreateserial", "-days", "1", "-out", crt],
        check=True, capture_output=True,
    )  # fmt: skip
    context.load_cert_chain(crt, key)
    return context


def test_kubelet_refuses_anonymous_and_unauthorized_clients(
    cluster: Cluster, tmp_path: Path
) -> None:
    # the kubelet's serving cert is the cluster CA's, for the node address
    url = f"https://{cluster.facts['BRIDGE_IP']}:10250/pods"
    anonymous = httpx.get(url, verify=_tls(cluster, tmp_path), timeout=10)
    assert anonymous.status_code == 401
    # a certificate from the cluster's CA authenticates, but RBAC grants this user nothing
    stranger = httpx.get(url, verify=_tls(cluster, tmp_path, "someone-without-rights"), timeout=10)
    assert stranger.status_code == 403
    assert "user=someone-without-rights" in stranger.text


def test_a_service_name_answers_from_another_pod(cluster: Cluster, namespace: str) -> None:
    def fetch() -> str:
        got = run_in(cluster, namespace, "client", "timeout 5 wget -qO- http://web/")
        return got.stdout.strip()

    assert wait_until(fetch, timeout=30, interval=0.5, what="Service web answers") == WEB_PAGE
    full = run_in(
        cluster,
        namespace,
        "client",
        f"timeout 5 wget -qO- http://web.{namespace}.svc.cluster.local/",
    )
    assert full.stdout.strip() == WEB_PAGE


def test_pods_resolve_through_coredns_only_and_never_outside_names(
    cluster: Cluster, namespace: str
) -> None:
    resolv = run_in(cluster, namespace, "client", "cat /etc/resolv.conf").stdout
    nameservers = [line.split()[1] for line in resolv.splitlines() if line.startswith("nameserver")]
    assert nameservers == [cluster.facts["BRIDGE_IP"]]
    inside = run_in(cluster, namespace, "client", "nslookup kubernetes.default.svc.cluster.local")
    assert inside.returncode == 0, inside.stdout + inside.stderr
    assert cluster.facts["KUBERNETES_SERVICE_IP"] in inside.stdout
    outside = run_in(cluster, namespace, "client", "nslookup -timeout=2 example.com")
    assert outside.returncode != 0, outside.stdout


def test_a_pod_reaches_the_apiserver_through_the_kubernetes_service(
    cluster: Cluster, namespace: str
) -> None:
    # kubectl's in-cluster config: KUBERNETES_SERVICE_HOST (the ClusterIP), the ServiceAccount's
    # token, and the cluster CA checking the apiserver's cert for that address. (busybox's own TLS
    # cannot talk to the apiserver, so kubectl comes from the host, read-only.)
    kubectl = str(cluster.bin_dir / "kubectl")
    client = pod(
        cluster,
        "in-cluster",
        "exec /kubectl get --raw /version",
        restartPolicy="Never",
        volumes=[{"name": "kubectl", "hostPath": {"path": kubectl, "type": "File"}}],
        container={
            "volumeMounts": [{"name": "kubectl", "mountPath": "/kubectl", "readOnly": True}]
        },
    )
    apply(cluster, namespace, client)
    wait_phase(cluster, namespace, "in-cluster", "Succeeded")
    version = json.loads(cluster.kubectl("logs", "-n", namespace, "in-cluster").stdout)
    assert version["gitVersion"].startswith("v1.")


def test_a_claim_binds_and_a_pod_writes_to_it(cluster: Cluster, namespace: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    writer = pod(
        cluster,
        "writer",
        "echo kept > /data/file && cat /data/file",
        restartPolicy="Never",
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
    )
    apply(cluster, namespace, claim, writer)
    wait_phase(cluster, namespace, "writer", "Succeeded", timeout=90)
    phase = cluster.kubectl("get", "pvc", "-n", namespace, "data", "-o", "jsonpath={.status.phase}")
    assert phase.stdout == "Bound"
    assert cluster.kubectl("logs", "-n", namespace, "writer").stdout.strip() == "kept"


def test_a_pod_without_host_users_runs_in_the_worker_shape(
    cluster: Cluster, namespace: str
) -> None:
    boxed = pod(
        cluster,
        "userns",
        "cat /proc/self/uid_map",
        restartPolicy="Never",
        hostUsers=False,
        container={"securityContext": WORKER_SECURITY},
    )
    apply(cluster, namespace, boxed)
    wait_phase(cluster, namespace, "userns", "Succeeded")
    inside, outside, length = cluster.kubectl("logs", "-n", namespace, "userns").stdout.split()
    # the pod's root is an unprivileged host uid, not host root
    assert inside == "0"
    assert outside != "0"
    assert int(length) <= 65536


def test_pods_cannot_reach_other_services_of_the_host(cluster: Cluster, namespace: str) -> None:
    bridge_ip = cluster.facts["BRIDGE_IP"]
    with socket.create_server((bridge_ip, 0)) as listener:
        port = listener.getsockname()[1]
        got = run_in(cluster, namespace, "client", f"nc -w 2 {bridge_ip} {port} </dev/null")
    assert got.returncode != 0


def test_a_loaded_image_runs_under_its_short_name(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    # how the project's own images arrive: an OCI archive naming `repo:tag`, no registry
    archive = tmp_path / "smoke.oci.tar"
    subprocess.run(
        [sys.executable, NODE_DIR / "oci_image.py", "--name", "kubejudge/node-smoke:dev",
         "--cmd", "/bin/sh", "--file", "/bin/busybox=/bin/busybox",
         "--link", "/bin/sh=busybox", "--link", "/bin/echo=busybox", "--out", archive],
        check=True,
    )  # fmt: skip
    cluster.load_images(archive)
    loaded = pod(
        cluster,
        "loaded",
        "echo from-the-archive",
        restartPolicy="Never",
        container={"image": "kubejudge/node-smoke:dev", "imagePullPolicy": "IfNotPresent"},
    )
    apply(cluster, namespace, loaded)
    wait_phase(cluster, namespace, "loaded", "Succeeded")
    assert cluster.kubectl("logs", "-n", namespace, "loaded").stdout.strip() == "from-the-archive"
