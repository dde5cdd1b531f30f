"""Small Kubernetes and HTTP reads shared by the cluster tests."""

from __future__ import annotations

import urllib.request
from typing import Any

from kubejudge_operator.spec import GROUP, PLURAL, VERSION
from kubernetes import client


def http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a loopback URL
        return bytes(response.read())


def read_cluster(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, name
    )
