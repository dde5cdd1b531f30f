"""Submissions through the api Service, judged by real worker pods: every language id, the
verdicts that need the sandbox's limits, and the sandbox inside the pod exactly as the operator
deploys it (`hostUsers: false`, three capabilities, a read-only root), with nothing added."""

from __future__ import annotations

import httpx
from kubernetes import client

from kubejudge.languages import LANGUAGES
from kubejudge.statuses import Status
from tests.e2e.judge import Judge
from tests.sandbox.sandbox_programs import PROGRAMS

# Reaches for everything a judged program must not: the network (the api's own Service and the
# Kubernetes API's), the pod's credentials, and the worker's files; prints what it got.
ESCAPE_PROBE = """
import os, socket
reached = []
for host, port in (("{api}", {api_port}), ("{kube}", 443)):
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached.append(f"{{host}}:{{port}}")
    except OSError:
        pass
for path in ("/var/run/secrets/kubernetes.io", "/opt/kubejudge", "/proc/1/environ"):
    try:
        os.listdir(path) if os.path.isdir(path) else open(path, "rb").read()
        reached.append(path)
    except OSError:
        pass
print("reached:", *reached)
"""


def test_every_language_id_is_judged_by_a_worker_pod(judge: Judge) -> None:
    with judge.http("polyglot") as http:
        tokens = {
            judge.submit(
                http,
                {
                    "source_code": PROGRAMS[language.family],
                    "language_id": language_id,
                    "stdin": "ok",
                    "expected_output": "42",
                },
            ): language_id
            for language_id, language in sorted(LANGUAGES.items())
        }
        answers = judge.wait_final(http, tokens, timeout_s=300)
    wrong = {
        tokens[token]: (answer["status"], answer["compile_output"], answer["stderr"])
        for token, answer in answers.items()
        if answer["status"]["id"] != Status.ACCEPTED
    }
    assert not wrong, wrong
    # The general pool woke from zero for them (the JVM pool has its warm worker).
    assert judge.status()["pools"]["general"]["current"] >= 1


def test_the_sandboxs_verdicts_hold_inside_a_pod(judge: Judge) -> None:
    c, python = PROGRAMS["c"], PROGRAMS["python"]
    cases = {
        "wa": ({"source_code": c, "language_id": 50, "stdin": "wa", "expected_output": "42"},
               Status.WRONG_ANSWER),
        "loop": ({"source_code": python, "language_id": 71, "stdin": "loop", "cpu_time_limit": 1},
                 Status.TIME_LIMIT_EXCEEDED),
        "nzec": ({"source_code": python, "language_id": 71, "stdin": "nzec"},
                 Status.RUNTIME_ERROR_NZEC),
        "segv": ({"source_code": c, "language_id": 50, "stdin": "segv"},
                 Status.RUNTIME_ERROR_SIGSEGV),
        "compile": ({"source_code": "int main( {", "language_id": 50},
                    Status.COMPILATION_ERROR),
        "memory": ({"source_code": "x = bytearray(400 * 1024 * 1024)\nprint(len(x))\n",
                    "language_id": 71, "memory_limit": 128_000},
                   None),
    }  # fmt: skip
    with judge.http("verdicts") as http:
        tokens = {judge.submit(http, body): name for name, (body, _) in cases.items()}
        answers = {tokens[t]: a for t, a in judge.wait_final(http, tokens).items()}
    for name, (_, want) in cases.items():
        if want is not None:
            assert answers[name]["status"]["id"] == want, (name, answers[name])
    memory = answers["memory"]
    assert memory["memory_limit_exceeded"] is True, memory
    assert memory["status"]["id"] != Status.ACCEPTED, memory


def test_judged_code_in_a_pod_reaches_no_network_and_no_credentials(judge: Judge) -> None:
    api = httpx.URL(judge.api_url)
    kube = client.CoreV1Api(judge.api_client).read_namespaced_service("kubernetes", "default")
    source = ESCAPE_PROBE.format(api=api.host, api_port=api.port, kube=kube.spec.cluster_ip)
    with judge.http("prober") as http:
        token = judge.submit(http, {"source_code": source, "language_id": 71})
        (answer,) = judge.wait_final(http, [token]).values()
    assert answer["status"]["id"] == Status.ACCEPTED, answer
    assert answer["stdout"] == "reached:\n", answer["stdout"]


def test_worker_pods_run_as_the_operator_deploys_them(judge: Judge) -> None:
    (pod,) = judge.ready_pods("worker", "jvm")
    assert pod.spec.host_users is False
    (container,) = pod.spec.containers
    security = container.security_context
    assert security.capabilities.drop == ["ALL"]
    assert sorted(security.capabilities.add) == ["KILL", "SETGID", "SETUID"]
    assert security.read_only_root_filesystem is True
    assert security.allow_privilege_escalation is False
    assert not security.privileged
    assert pod.spec.automount_service_account_token is False
    # The worker inside says which sandbox it runs: bubblewrap, with memory watched (a pod has
    # no writable memory cgroup).
    metrics = httpx.get(f"http://{pod.status.pod_ip}:9102/metrics", timeout=5).text
    modes = [
        line for line in metrics.splitlines() if line.startswith("kubejudge_worker_sandbox_mode{")
    ]
    assert any('mode="bwrap"' in line and line.endswith(" 1.0") for line in modes), modes
