"""How fast the real operator reacts: queue growth -> worker Deployment resized, on a real
control plane (tests/controlplane) with a real Redis.

    .venv/bin/python bench/operator_reaction.py [--runs 5]

Set KUBEJUDGE_CONTROLPLANE_DIR=.controlplane to reuse a running control plane (make
controlplane-up); otherwise one is started and stopped. Prints a table and one JSON line:
- wake: entries enqueued into an idle pool (0 workers) -> /scale says the needed size;
- grow: a second burst into a running pool -> the larger size;
- shrink: queue drained -> size back to 0, minus the pool's scale-down delay (1 s here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from kubejudge_dev import localservices
from kubernetes import client
from redis.asyncio import Redis

from kubejudge import protocol, queue

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.controlplane import fixture as controlplane  # noqa: E402

GROUP, VERSION, PLURAL = "kubejudge.dev", "v1alpha1", "judgeclusters"
DELAY_S = 1


@contextlib.contextmanager
def control_plane() -> Iterator[controlplane.ControlPlane]:
    with (
        tempfile.TemporaryDirectory(prefix="kj-bench-cp-") as state,
        controlplane.controlplane_session(state) as plane,
    ):
        yield plane


def wait_for(check: Callable[[], bool], *, timeout_s: float = 30.0) -> float:
    """Seconds until `check()` held, polling every 20 ms."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError("the operator did not react in time")
        time.sleep(0.02)
    return time.monotonic() - start


async def one_run(api: client.ApiClient, namespace: str, redis: Redis) -> dict[str, float]:
    apps, custom = client.AppsV1Api(api), client.CustomObjectsApi(api)
    pool = f"p{uuid.uuid4().hex[:6]}"
    name = f"bench-{pool}"
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "JudgeCluster", "metadata": {"name": name},
        "spec": {
            "images": {"api": "a:1", "worker": "w:1", "gateway": "g:1"},
            "redis": {"urlSecretRef": {"name": "stores", "key": "redis"}},
            "postgresql": {"urlSecretRef": {"name": "stores", "key": "database"}},
            "jwtSecretRef": {"name": "stores", "key": "jwt"},
            "workerPools": [{"name": pool, "languages": ["*"], "maxReplicas": 20,
                             "targetBacklogPerWorker": 1, "scaleDownDelaySeconds": DELAY_S}],
        },
    })  # fmt: skip
    deployment = f"{name}-worker-{pool}"

    def size() -> int:
        try:
            return int(apps.read_namespaced_deployment(deployment, namespace).spec.replicas)
        except client.ApiException:
            return -1

    wait_for(lambda: size() == 0)
    await queue.ensure_group(redis, pool)
    await asyncio.sleep(1.5)  # let the loop settle into its polling rhythm
    for i in range(5):
        await queue.enqueue(redis, pool=pool, token=f"{pool}-a{i}")
    wake = wait_for(lambda: size() == 5)
    for i in range(7):
        await queue.enqueue(redis, pool=pool, token=f"{pool}-b{i}")
    grow = wait_for(lambda: size() == 12)
    await redis.delete(protocol.queue_stream(pool))
    shrink = wait_for(lambda: size() == 0) - DELAY_S
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    return {"wake_s": wake, "grow_s": grow, "shrink_s": shrink}


async def run_all(api: client.ApiClient, namespace: str, url: str, runs: int) -> list[dict]:
    redis = Redis.from_url(url)
    try:
        return [await one_run(api, namespace, redis) for _ in range(runs)]
    finally:
        await redis.aclose()


def bench(plane: controlplane.ControlPlane, runs: int) -> list[dict[str, float]]:
    api = plane.admin_api_client()
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                  str(ROOT / "charts/kubejudge/crds/judgecluster.yaml"))  # fmt: skip
    plane.kubectl("wait", "--for=condition=Established", "crd/judgeclusters.kubejudge.dev")
    namespace = plane.namespace("kj-bench")
    redis_dir = Path(tempfile.mkdtemp(prefix="kj-bench-redis-"))
    server = localservices.start_redis(redis_dir)
    client.CoreV1Api(api).create_namespaced_secret(namespace, client.V1Secret(
        metadata=client.V1ObjectMeta(name="stores"),
        string_data={"redis": server.url, "database": "postgresql://x@127.0.0.1:1/x",
                     "jwt": "x" * 40},
    ))  # fmt: skip
    env = os.environ | {"KUBECONFIG": plane.kubeconfig}
    argv = [sys.executable, "-m", "kubejudge.cli", "operator", "-n", namespace, "--standalone",
            "--liveness", "", "--metrics-port", "0"]  # fmt: skip
    operator = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return asyncio.run(run_all(api, namespace, server.url, runs))
    finally:
        plane.kubectl("delete", "judgeclusters", "--all", "-n", namespace, "--wait=true")
        operator.terminate()
        operator.wait(timeout=20)
        server.stop()
        shutil.rmtree(redis_dir, ignore_errors=True)
        plane.delete_namespace(namespace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    reuse = os.environ.get("KUBEJUDGE_CONTROLPLANE_DIR")
    with contextlib.ExitStack() as stack:
        plane = controlplane.attach(reuse) if reuse else stack.enter_context(control_plane())
        results = bench(plane, args.runs)
    medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
    print(f"operator_reaction: {args.runs} runs, poll interval 1 s, scale-down delay {DELAY_S} s")
    print(f"{'step':<8} {'median s':>9} {'max s':>7}")
    for key, median in medians.items():
        print(f"{key[:-2]:<8} {median:>9.2f} {max(r[key] for r in results):>7.2f}")
    print(json.dumps({"bench": "operator_reaction", "runs": args.runs, "median_s": medians,
                      "all": results}, sort_keys=True))  # fmt: skip


if __name__ == "__main__":
    main()
