"""A real single-node Kubernetes cluster for tests (tests/node/start.sh: the control plane of
tests/controlplane plus containerd, runc, kubelet, kube-proxy, CoreDNS, local-path-provisioner).

Import this from a conftest, e.g.::

    from node import fixture as nodefixture

    def pytest_collection_finish(session):
        nodefixture.build_binaries()  # a cold build takes minutes: outside any test timeout

    @pytest.fixture(scope="session")
    def cluster():
        with nodefixture.cluster_session() as cluster:
            yield cluster

Needs root. Only one such cluster runs on a machine at a time (start.sh refuses a second).

Environment:
  KUBEJUDGE_CLUSTER_DIR  reuse a cluster already started by ``make cluster-up`` (its state dir,
                         e.g. ``.cluster``) instead of starting one; it is left running.
  KUBEJUDGE_CACHE        build cache root (see build.sh).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from controlplane import fixture as cpfixture

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"
START_SH = HERE / "start.sh"
STOP_SH = HERE / "stop.sh"
LOAD_IMAGES_SH = HERE / "load-images.sh"


def build_binaries() -> Path:
    """Build (or reuse) the node's and the control plane's binaries; returns the node's bin dir."""
    cpfixture.build_binaries()
    proc = subprocess.run(
        ["bash", str(BUILD_SH)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tests/node/build.sh failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def read_env(state_dir: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of the cluster's env file."""
    pairs = (line.split("=", 1) for line in (state_dir / "env").read_text().splitlines())
    return {key: value for key, value in pairs}


@dataclass
class Cluster(cpfixture.ControlPlane):
    """The control plane's helpers (kubectl, namespaces, ServiceAccount kubeconfigs) plus the
    node's facts from its env file (``NODE_NAME``, ``BRIDGE_IP``, ``POD_CIDR``, ``SERVICE_CIDR``,
    ``CONTAINERD_ADDRESS``, ``CTR``, ``BUSYBOX_IMAGE``, ...)."""

    facts: dict[str, str] = field(default_factory=dict)

    def load_images(self, *archives: str | os.PathLike) -> None:
        """Import OCI image archives into the node's containerd (see load-images.sh)."""
        subprocess.run(
            ["bash", str(LOAD_IMAGES_SH), "--state-dir", str(self.state_dir), *map(str, archives)],
            check=True,
        )


def attach(state_dir: str | os.PathLike) -> Cluster:
    """A Cluster object for a cluster already started by start.sh in ``state_dir``."""
    state_dir = Path(state_dir).resolve()
    facts = read_env(state_dir)
    return Cluster(
        state_dir=state_dir,
        kubeconfig=facts["KUBECONFIG"],
        api_url=facts["API_URL"],
        bin_dir=Path(facts["CP_BIN_DIR"]),
        ca_file=facts["CA_FILE"],
        facts=facts,
    )


def start(state_dir: Path) -> Cluster:
    """Start a cluster in ``state_dir`` (blocking until ready); it stops itself if this process
    dies without calling :func:`stop`."""
    env = dict(os.environ, CLUSTER_WATCH_PID=str(os.getpid()))
    proc = subprocess.run(
        ["bash", str(START_SH), "--state-dir", str(state_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tests/node/start.sh failed (exit {proc.returncode}); see stderr")
    return attach(state_dir)


def stop(state_dir: Path) -> None:
    subprocess.run(["bash", str(STOP_SH), str(state_dir)], stderr=sys.stderr, check=False)


@contextlib.contextmanager
def cluster_session() -> Iterator[Cluster]:
    """Start a cluster in a fresh state dir (or attach to ``$KUBEJUDGE_CLUSTER_DIR``), and stop
    and remove it on exit."""
    reuse = os.environ.get("KUBEJUDGE_CLUSTER_DIR")
    if reuse:
        cluster = attach(reuse)
        try:
            yield cluster
        finally:
            cluster.close()
        return
    state_dir = new_state_dir()
    try:
        cluster = start(state_dir)
        try:
            yield cluster
        finally:
            cluster.close()
    finally:
        stop(state_dir)
        remove_state_dir(state_dir)


def new_state_dir() -> Path:
    """An empty state dir in /tmp. Not under pytest's 0700 tmp dir: the root of a
    `hostUsers: false` pod is an unprivileged host uid and must pass through every parent."""
    state_dir = Path(tempfile.mkdtemp(prefix="kubejudge-cluster-"))
    state_dir.chmod(0o711)
    return state_dir


def remove_state_dir(state_dir: Path) -> None:
    """Remove a stopped cluster's state dir."""
    # rmtree descends into mount points: with a mount left behind it would delete what is mounted.
    prefix = f"{state_dir}/"
    left = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    if left:
        raise RuntimeError(f"teardown left mounts under {state_dir}, not removing it: {left}")
    shutil.rmtree(state_dir, ignore_errors=True)
