"""A small async Kubernetes client: exactly the calls the operator makes, idempotent.

`apply` is server-side apply with our field manager, so re-applying an unchanged manifest is a
no-op and a field edited by hand is put back; fields we never set (a worker Deployment's
`replicas`, owned by the autoscaler through /scale) are left alone. Credentials come from the
pod's service account, else from the kubeconfig (KUBECONFIG), via the `kubernetes` package.
"""

from __future__ import annotations

import base64
import json
import ssl
from typing import Any

import httpx
from kubernetes import client, config

FIELD_MANAGER = "kubejudge-operator"
# Owns worker Deployments' `replicas` (from creation on, then through /scale); the operator's
# own applies leave that field out.
AUTOSCALER_MANAGER = "kubejudge-autoscaler"

# kind -> (API path prefix, plural) for the kinds the operator touches.
KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "Pod": ("/api/v1", "pods"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "StatefulSet": ("/apis/apps/v1", "statefulsets"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "JudgeCluster": ("/apis/kubejudge.dev/v1alpha1", "judgeclusters"),
}


class KubeError(Exception):
    """The API server refused a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


def path(kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
    prefix, plural = KINDS[kind]
    parts = [prefix, "namespaces", namespace, plural, name, sub]
    return "/".join(part for part in parts if part)


class Kube:
    def __init__(self, configuration: client.Configuration) -> None:
        self._configuration = configuration
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._http = httpx.AsyncClient(base_url=configuration.host, verify=context, timeout=10)

    @classmethod
    def connect(cls) -> Kube:
        """In a pod: its service account. Elsewhere: the current kubeconfig context."""
        configuration = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
        return cls(configuration)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # A service-account or kubeconfig token (re-read when due); client certificates
        # otherwise, already in the TLS context.
        bearer = self._configuration.auth_settings().get("BearerToken")
        if bearer and bearer["value"]:
            headers["Authorization"] = bearer["value"]
        content = None if body is None else json.dumps(body)
        response = await self._http.request(
            method, url, content=content, headers=headers, params=params
        )
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, message)
        return response.json() if response.content else {}

    async def apply(
        self, manifest: dict[str, Any], *, field_manager: str = FIELD_MANAGER
    ) -> dict[str, Any]:
        """Create or update `manifest` by server-side apply, taking over conflicting fields.
        A field this manager applied before and `manifest` leaves out is removed, unless
        another manager owns it too."""
        meta = manifest["metadata"]
        return await self.request(
            "PATCH",
            path(manifest["kind"], meta["namespace"], meta["name"]),
            body=manifest,
            content_type="application/apply-patch+yaml",  # JSON is YAML
            params={"fieldManager": field_manager, "force": "true"},
        )

    async def create_if_absent(self, manifest: dict[str, Any]) -> bool:
        """Create `manifest` unless an object of that name exists; True when it was created."""
        try:
            await self.request(
                "POST",
                path(manifest["kind"], manifest["metadata"]["namespace"]),
                body=manifest,
                params={"fieldManager": FIELD_MANAGER},
            )
        except KubeError as error:
            if error.status == 409:
                return False
            raise
        return True

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self.request("GET", path(kind, namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            await self.request("DELETE", path(kind, namespace, name))
        except KubeError as error:
            if error.status != 404:
                raise

    async def select(
        self, kind: str, namespace: str, selector: dict[str, str]
    ) -> list[dict[str, Any]]:
        label_selector = ",".join(f"{key}={value}" for key, value in sorted(selector.items()))
        found = await self.request(
            "GET", path(kind, namespace), params={"labelSelector": label_selector}
        )
        return list(found.get("items", []))

    async def merge_patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        *,
        sub: str | None = None,
        field_manager: str = FIELD_MANAGER,
    ) -> dict[str, Any]:
        return await self.request(
            "PATCH",
            path(kind, namespace, name, sub),
            body=body,
            content_type="application/merge-patch+json",
            params={"fieldManager": field_manager},
        )

    async def replicas(self, namespace: str, deployment: str) -> int | None:
        """The Deployment's spec.replicas via /scale; None when it does not exist (yet)."""
        try:
            scale = await self.request("GET", path("Deployment", namespace, deployment, "scale"))
        except KubeError as error:
            if error.status == 404:
                return None
            raise
        return int(scale.get("spec", {}).get("replicas") or 0)

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        await self.merge_patch(
            "Deployment",
            namespace,
            deployment,
            {"spec": {"replicas": replicas}},
            sub="scale",
            field_manager=AUTOSCALER_MANAGER,
        )

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        secret = await self.get("Secret", namespace, name)
        if secret is None or key not in secret.get("data", {}):
            raise KubeError(404, f"secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(secret["data"][key]).decode()
