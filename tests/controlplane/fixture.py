"""A real Kubernetes control plane for tests (etcd + kube-apiserver + kube-controller-manager +
kube-scheduler + kwok fake nodes), built from Go modules by ``build.sh`` and run by ``start.sh``.

Import this from a conftest, e.g.::

    from tests.controlplane.fixture import controlplane_session

    @pytest.fixture(scope="session")
    def controlplane(tmp_path_factory):
        with controlplane_session(tmp_path_factory.mktemp("controlplane")) as cp:
            yield cp

Environment:
  KUBEJUDGE_CONTROLPLANE_DIR  reuse an already running control plane (state dir of
                              ``tests/controlplane/start.sh``, e.g. ``.controlplane``) instead of
                              starting one; it is then left running at teardown.
  KUBEJUDGE_CACHE             build cache root (see build.sh).
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

HERE = Path(__file__).resolve().parent
BUILD_SH = HERE / "build.sh"
START_SH = HERE / "start.sh"

T = TypeVar("T")


def wait_until(
    fn: Callable[[], T], timeout: float = 60.0, interval: float = 0.25, what: str = ""
) -> T:
    """Call ``fn`` until it returns a truthy value (returned) or ``timeout`` passes
    (AssertionError). Exceptions raised by ``fn`` count as "not yet"; the last one is chained
    into the error."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            result = fn()
            if result:
                return result
        except Exception as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what or fn}"
            ) from last_exc
        time.sleep(interval)


def build_binaries() -> Path:
    """Build (or reuse from the cache) all control-plane binaries; returns the bin dir."""
    proc = subprocess.run(
        ["bash", str(BUILD_SH)], stdout=subprocess.PIPE, stderr=sys.stderr, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tests/controlplane/build.sh failed with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _read_env(state_dir: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in (state_dir / "env").read_text().splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


@dataclass
class ControlPlane:
    state_dir: Path
    kubeconfig: str
    api_url: str
    bin_dir: Path
    ca_file: str
    _clients: list = field(default_factory=list, repr=False)

    # ----------------------------------------------------------------- clients
    def admin_api_client(self):
        """A ``kubernetes.client.ApiClient`` authenticated as a system:masters user."""
        from kubernetes import config

        client = config.new_client_from_config(config_file=self.kubeconfig)
        self._clients.append(client)
        return client

    def api_client_for(self, kubeconfig: str):
        from kubernetes import config

        client = config.new_client_from_config(config_file=kubeconfig)
        self._clients.append(client)
        return client

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG set to the admin kubeconfig and bin_dir first on PATH."""
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(
        self,
        *args: str,
        kubeconfig: str | None = None,
        check: bool = True,
        input: str | None = None,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess:
        """Run the kubectl from bin_dir against this control plane."""
        return subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            capture_output=True,
            text=True,
            check=check,
            input=input,
            timeout=timeout,
        )

    # ----------------------------------------------------------------- namespaces
    def namespace(self, prefix: str = "test", *, wait_for_default_sa: bool = True) -> str:
        """Create a namespace with a unique name and return its name. With
        ``wait_for_default_sa`` it also waits until the controller manager has created the
        ``default`` ServiceAccount (pods cannot be created before that)."""
        from kubernetes import client

        api = client.CoreV1Api(self._admin())
        name = f"{prefix[:40].rstrip('-')}-{uuid.uuid4().hex[:8]}"
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        if wait_for_default_sa:
            wait_until(
                lambda: api.read_namespaced_service_account("default", name),
                timeout=30,
                what=f"ServiceAccount {name}/default",
            )
        return name

    def delete_namespace(self, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        try:
            client.CoreV1Api(self._admin()).delete_namespace(name)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # ----------------------------------------------------------------- service accounts
    def serviceaccount_token(
        self, namespace: str, name: str, *, create: bool = True, expiration_seconds: int = 3600
    ) -> str:
        """A bearer token for ServiceAccount ``namespace/name`` minted via TokenRequest."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        api = client.CoreV1Api(self._admin())
        if create:
            try:
                api.create_namespaced_service_account(
                    namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
                )
            except ApiException as exc:
                if exc.status != 409:
                    raise
        tr = api.create_namespaced_service_account_token(
            name,
            namespace,
            client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(
                    audiences=[], expiration_seconds=max(600, expiration_seconds)
                )
            ),
        )
        return tr.status.token

    def serviceaccount_kubeconfig(
        self, namespace: str, name: str, *, create: bool = True, expiration_seconds: int = 3600
    ) -> str:
        """Write a kubeconfig that authenticates as ServiceAccount ``namespace/name`` (created if
        missing) with a TokenRequest token; returns its path."""
        token = self.serviceaccount_token(
            namespace, name, create=create, expiration_seconds=expiration_seconds
        )
        ca = base64.b64encode(Path(self.ca_file).read_bytes()).decode()
        user = f"system:serviceaccount:{namespace}:{name}"
        path = self.state_dir / "sa" / f"{namespace}.{name}.{uuid.uuid4().hex[:6]}.kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: kubejudge-test\n  cluster:\n    server: {self.api_url}\n"
            f"    certificate-authority-data: {ca}\n"
            f"users:\n- name: {user}\n  user:\n    token: {token}\n"
            f"contexts:\n- name: {user}\n  context:\n    cluster: kubejudge-test\n"
            f"    user: {user}\n    namespace: {namespace}\n"
            f"current-context: {user}\n"
        )
        path.chmod(0o600)
        return str(path)

    # ----------------------------------------------------------------- internals
    _admin_client: object | None = field(default=None, repr=False)

    def _admin(self):
        if self._admin_client is None:
            self._admin_client = self.admin_api_client()
        return self._admin_client

    def close(self) -> None:
        for c in self._clients:
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()
        self._admin_client = None


def attach(state_dir: str | os.PathLike) -> ControlPlane:
    """A ControlPlane object for a control plane already started by start.sh in ``state_dir``."""
    state_dir = Path(state_dir).resolve()
    env = _read_env(state_dir)
    return ControlPlane(
        state_dir=state_dir,
        kubeconfig=env["CP_KUBECONFIG"],
        api_url=env["CP_API_URL"],
        bin_dir=Path(env["CP_BIN_DIR"]),
        ca_file=env["CP_CA_FILE"],
    )


def start(
    state_dir: str | os.PathLike,
    *,
    bin_dir: str | os.PathLike | None = None,
    kwok_nodes: int = 1,
    extra_env: dict[str, str] | None = None,
) -> ControlPlane:
    """Build-or-reuse the binaries and start a control plane in ``state_dir`` (blocking until
    ready). Pair with :func:`stop`."""
    state_dir = Path(state_dir).resolve()
    bin_dir = Path(bin_dir) if bin_dir else build_binaries()
    env = dict(os.environ)
    env.update(
        {
            "CP_STATE_DIR": str(state_dir),
            "CP_BIN_DIR": str(bin_dir),
            "CP_KWOK_NODES": str(kwok_nodes),
            "CP_WATCH_PID": str(os.getpid()),
        }
    )
    env.update(extra_env or {})
    proc = subprocess.run(
        ["bash", str(START_SH)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=sys.stderr,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"tests/controlplane/start.sh failed (exit {proc.returncode}); logs in {state_dir}/logs"
        )
    return attach(state_dir)


def stop(state_dir: str | os.PathLike) -> None:
    subprocess.run(
        ["bash", str(START_SH), "--stop", "--state-dir", str(state_dir)],
        stdout=subprocess.DEVNULL,
        stderr=sys.stderr,
        check=False,
    )


@contextlib.contextmanager
def controlplane_session(state_dir: str | os.PathLike, **kwargs) -> Iterator[ControlPlane]:
    """Context manager for a session-scoped control plane: starts one in ``state_dir`` (or attaches
    to ``$KUBEJUDGE_CONTROLPLANE_DIR`` if set) and stops it on exit."""
    reuse = os.environ.get("KUBEJUDGE_CONTROLPLANE_DIR")
    if reuse:
        cp = attach(reuse)
        try:
            yield cp
        finally:
            cp.close()
        return
    cp = start(state_dir, **kwargs)
    try:
        yield cp
    finally:
        cp.close()
        stop(state_dir)
