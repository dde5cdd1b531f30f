"""Small Kubernetes and HTTP reads shared by the cluster tests, and the operator as a process."""

from __future__ import annotations

import os
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubejudge_dev import localservices
from kubejudge_operator.spec import GROUP, PLURAL, VERSION
from kubernetes import client

from support.polling import wait_until
from support.processes import spawn_role, stop


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback URL
        return bytes(response.read())


def read_cluster(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )


@contextmanager
def operator_process(
    *, namespace: str, kubeconfig: str, settings: dict[str, str], log: Path, metrics_port: int = 0
) -> Iterator[subprocess.Popen[bytes]]:
    """`kubejudge operator --standalone` for `namespace`, as the identity in `kubeconfig`, with
    `settings` (KUBEJUDGE_* variables); alive (its liveness answers) for the block, then stopped."""
    liveness = f"http://127.0.0.1:{localservices.free_port()}/healthz"
    process = spawn_role(
        "operator", "--namespace", namespace, "--standalone", "--liveness", liveness,
        "--metrics-port", str(metrics_port),
        env=os.environ | {"KUBECONFIG": kubeconfig, **settings}, log=log,
    )  # fmt: skip
    try:
        wait_until(lambda: http_get(liveness), what="operator liveness")
        yield process
    finally:
        stop([process], timeout_s=20)
