"""The real single-node cluster of tests/node: how long it takes to start and stop, and how much
memory it holds with a few pods.

    .venv/bin/python bench/node_cluster.py [--runs 3] [--pods 5]

Root only, and no other such cluster may be running. The binaries are built first (not timed;
build.sh prints its own times), so every run measures a warm `make cluster-up`: start.sh from an
empty state dir until the node is Ready with DNS, proxy and storage up. Then `--pods` busybox pods
start (time until all Running), the resident memory of every process of the cluster is summed
(control plane, node daemons, containerd's shims; the pods' own processes apart), and stop.sh runs
(time until the machine is clean). Reported per run and as medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from node import fixture as nodefixture  # noqa: E402

PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_mib(pids: list[int]) -> dict[str, float]:
    """Resident memory per program name (MiB) of `pids`."""
    by_name: dict[str, float] = {}
    for pid in pids:
        try:
            name = Path(f"/proc/{pid}/exe").resolve().name
            resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        by_name[name] = by_name.get(name, 0.0) + resident * PAGE_KIB / 1024
    return by_name


def cluster_pids(state_dir: Path) -> list[int]:
    """Processes whose command line names the state dir: every daemon and every shim."""
    needle = str(state_dir).encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def kubectl(cluster: nodefixture.Cluster, *args: str, stdin: str | None = None) -> str:
    return cluster.kubectl(*args, input=stdin).stdout


def start_pods(cluster: nodefixture.Cluster, count: int) -> float:
    namespace = cluster.namespace("bench")
    image = cluster.facts["BUSYBOX_IMAGE"]
    pods = [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"sleeper-{i}"},
            "spec": {
                "terminationGracePeriodSeconds": 0,
                "containers": [
                    {
                        "name": "main",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["sleep", "3600"],
                    }
                ],
            },
        }
        for i in range(count)
    ]
    started = time.monotonic()
    kubectl(
        cluster,
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}),
    )
    while True:
        phases = kubectl(
            cluster, "get", "pods", "-n", namespace, "-o", "jsonpath={.items[*].status.phase}"
        ).split()
        if phases.count("Running") == count:
            return time.monotonic() - started
        time.sleep(0.2)


def one_run(pods: int) -> dict[str, float]:
    state_dir = nodefixture.new_state_dir()
    try:
        started = time.monotonic()
        cluster = nodefixture.start(state_dir)
        up = time.monotonic() - started
        pods_running = start_pods(cluster, pods)
        time.sleep(2)  # let the daemons settle after the burst
        memory = rss_mib(cluster_pids(state_dir))
        cluster.close()
    finally:
        started = time.monotonic()
        nodefixture.stop(state_dir)
        down = time.monotonic() - started
        nodefixture.remove_state_dir(state_dir)
    return {
        "up_s": round(up, 1),
        "pods_running_s": round(pods_running, 1),
        "down_s": round(down, 1),
        "rss_mib": round(sum(memory.values())),
        **{f"rss_{name}_mib": round(mib) for name, mib in sorted(memory.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pods", type=int, default=5)
    args = parser.parse_args()
    nodefixture.build_binaries()
    runs = []
    for i in range(args.runs):
        result = one_run(args.pods)
        runs.append(result)
        print(f"run {i + 1}: {result}", file=sys.stderr)
    keys = ["up_s", "pods_running_s", "down_s", "rss_mib"]
    medians = {key: statistics.median(run[key] for run in runs) for key in keys}
    print(f"{'':18}" + "".join(f"{key:>16}" for key in keys))
    for i, run in enumerate(runs, 1):
        print(f"{f'run {i}':18}" + "".join(f"{run[key]:>16}" for key in keys))
    print(f"{'median':18}" + "".join(f"{medians[key]:>16}" for key in keys))
    print(json.dumps({"bench": "node_cluster", "pods": args.pods, "median": medians, "runs": runs}))


if __name__ == "__main__":
    main()
