"""The judge as the e2e tests see it: installed in pods, reached through its Services.

Everything goes where a user's traffic would: the api and gateway Services' cluster IPs (kube-proxy
on this node routes the host's own connections to them), never a pod's address or a port-forward.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubejudge_api.judge0_response import ALL_FIELDS, EXTENSION_FIELDS
from kubernetes import client
from redis.asyncio import Redis

from kubejudge import auth, poolload, poolview, protocol

# Judge0's final statuses are every id above 2 (1 In Queue, 2 Processing); 3 is Accepted.
ACCEPTED = 3
FINAL_STATUS_MIN = 3
# Every Judge0 field and our extensions, which `*` leaves out so Judge0 clients see what they
# expect.
FIELDS = ",".join((*ALL_FIELDS, *EXTENSION_FIELDS))


@dataclass(frozen=True)
class Judge:
    """One JudgeCluster (examples/judgecluster.yaml as shipped) and how to reach its parts."""

    namespace: str
    name: str
    kubeconfig: str
    kubectl_bin: str
    api_client: client.ApiClient
    api_url: str
    gateway_url: str
    redis_url: str
    jwt_secret: str

    # ------------------------------------------------------------ kubectl and objects

    def kubectl(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            [self.kubectl_bin, "--kubeconfig", self.kubeconfig, "-n", self.namespace, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stderr}"
        return result.stdout

    def pods(self, component: str, pool: str | None = None) -> list[client.V1Pod]:
        selector = f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}"
        if pool is not None:
            selector += f",kubejudge.dev/pool={pool}"
        core = client.CoreV1Api(self.api_client)
        return core.list_namespaced_pod(self.namespace, label_selector=selector).items

    def ready_pods(self, component: str, pool: str | None = None) -> list[client.V1Pod]:
        return [pod for pod in self.pods(component, pool) if is_ready(pod)]

    def replicas(self, pool: str) -> int:
        apps = client.AppsV1Api(self.api_client)
        scale = apps.read_namespaced_deployment_scale(f"{self.name}-worker-{pool}", self.namespace)
        return int(scale.spec.replicas or 0)

    def status(self) -> dict[str, Any]:
        body = client.CustomObjectsApi(self.api_client).get_namespaced_custom_object(
            "kubejudge.dev", "v1alpha1", self.namespace, "judgeclusters", self.name
        )
        return body.get("status") or {}

    def conditions(self) -> dict[str, str]:
        return {c["type"]: c["status"] for c in self.status().get("conditions") or []}

    def sql(self, query: str) -> list[list[str]]:
        """A read-only query on the managed PostgreSQL, through its own pod's psql."""
        pod = self.pods("postgresql")[0].metadata.name
        out = self.kubectl(
            "exec", pod, "--", "psql", "-U", "kubejudge", "-d", "kubejudge", "-AtF", "\t",
            "-c", query,
        )  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    # ------------------------------------------------------------ the Judge0 API

    def jwt(self, user: str) -> str:
        return auth.issue(secret=self.jwt_secret, user_id=user)

    def http(self, user: str = "e2e") -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {self.jwt(user)}"},
            timeout=30,
        )

    def submit(self, http: httpx.Client, body: dict[str, Any]) -> str:
        response = http.post("/submissions", params={"base64_encoded": "false"}, json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def wait_final(
        self, http: httpx.Client, tokens: Iterable[str], *, timeout_s: float = 180
    ) -> dict[str, dict[str, Any]]:
        """Each submission's final answer (Judge0's fields and ours), polling until every one
        has one."""
        waiting, done = set(tokens), {}
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for token in sorted(waiting):
                response = http.get(
                    f"/submissions/{token}", params={"base64_encoded": "false", "fields": FIELDS}
                )
                assert response.status_code == 200, response.text
                answer = response.json()
                if answer["status"]["id"] >= FINAL_STATUS_MIN:
                    done[token] = answer
                    waiting.discard(token)
            if waiting:
                time.sleep(0.5)
        assert not waiting, f"{len(waiting)} submission(s) had no verdict in {timeout_s} s"
        return done

    def attempts(self, tokens: Iterable[str]) -> dict[str, int]:
        """How many times each submission was started, from its row (the fencing counter)."""
        listed = ",".join(f"'{uuid.UUID(token)}'" for token in tokens)  # UUIDs only
        rows = self.sql(f"SELECT token, attempt FROM submissions WHERE token IN ({listed})")  # noqa: S608
        return {token: int(attempt) for token, attempt in rows}


def is_ready(pod: client.V1Pod) -> bool:
    if pod.metadata.deletion_timestamp is not None or pod.status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def service_ip(api_client: client.ApiClient, namespace: str, name: str) -> str:
    service = client.CoreV1Api(api_client).read_namespaced_service(name, namespace)
    return str(service.spec.cluster_ip)


def read_summary(report: Path) -> dict[str, Any]:
    return json.loads((report / "summary.json").read_text())


def busy_pods(redis_url: str, pool: str) -> set[str]:
    """The pods whose workers' heartbeats say they are judging (as the operator reads them)."""

    async def read() -> frozenset[str]:
        redis = Redis.from_url(redis_url)
        try:
            return (await poolload.observe(redis, pool)).busy_pods
        finally:
            await redis.aclose()

    return set(asyncio.run(read()))


def scaling_record(redis_url: str, pool: str) -> protocol.ScalingRecord | None:
    """The operator's last decision for the pool, as every page's pool view reads it."""

    async def read() -> protocol.ScalingRecord | None:
        redis = Redis.from_url(redis_url)
        try:
            return await poolview.read_decision(redis, pool)
        finally:
            await redis.aclose()

    return asyncio.run(read())


@dataclass
class Burst:
    """`kubejudge loadtest` against the Services, running in the background."""

    process: subprocess.Popen[bytes]
    report: Path
    log: Path

    def finish(self, timeout_s: float = 300) -> dict[str, Any]:
        try:
            self.process.wait(timeout=timeout_s)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        output = self.log.read_text()[-4000:]
        assert (self.report / "summary.json").exists(), output
        summary = read_summary(self.report)
        assert self.process.returncode == 0, (summary, output)
        return summary


def start_burst(
    judge: Judge, *, out: Path, count: int, work_s: float, users: int = 3,
    observe_s: float = 0, timeout_s: float = 240, prometheus: str | None = None,
) -> Burst:  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    report, log = out / "report", out / "loadtest.log"
    argv = [
        str(Path(sys.executable).parent / "kubejudge"), "loadtest",
        "--burst", str(count), "--work-s", str(work_s), "--users", str(users),
        "--timeout", str(timeout_s), "--api", judge.api_url, "--gateway", judge.gateway_url,
        "--redis-url", judge.redis_url, "--judgecluster", f"{judge.namespace}/{judge.name}",
        "--kubeconfig", judge.kubeconfig, "--out", str(report), "--no-progress",
        "--observe-s", str(observe_s),
    ]  # fmt: skip
    if prometheus is not None:
        argv += ["--prometheus", prometheus]
    env = os.environ | {"KUBEJUDGE_JWT_SECRET": judge.jwt_secret}
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env)
    return Burst(process=process, report=report, log=log)


def assert_one_final_verdict_each(summary: dict[str, Any]) -> None:
    """Every accepted submission reached a final verdict, delivered once over the WebSocket."""
    assert summary["accepted"] > 0, summary
    assert summary["lost_never_finished"] == 0, summary
    assert summary["verdicts_delivered"] == summary["accepted"], summary
    assert summary["duplicate_verdicts"] == 0, summary
