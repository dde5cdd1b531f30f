"""Fixtures for tests against a real Kubernetes control plane (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler and kwok fake nodes; see tests/controlplane/).

- ``controlplane`` (session): one control plane per test session, torn down at the end.
  Set ``KUBEJUDGE_CONTROLPLANE_DIR=.controlplane`` to reuse one started by ``make controlplane-up``.
- ``k8s_namespace`` (function): a fresh namespace per test, deleted afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from controlplane import fixture as cpfixture  # tests/ is on sys.path, as for support

ControlPlane = cpfixture.ControlPlane
_BIN_DIR: Path | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    # Build (or reuse) the binaries here and not inside the fixture: a cold build takes 10-20
    # minutes and must not count against the per-test timeout. Only when a selected test needs it.
    global _BIN_DIR
    if os.environ.get("KUBEJUDGE_CONTROLPLANE_DIR") or session.config.option.collectonly:
        return
    if any("controlplane" in getattr(item, "fixturenames", ()) for item in session.items):
        _BIN_DIR = cpfixture.build_binaries()


@pytest.fixture(scope="session")
def controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with cpfixture.controlplane_session(
        tmp_path_factory.mktemp("controlplane"), bin_dir=_BIN_DIR
    ) as cp:
        yield cp


@pytest.fixture
def k8s_namespace(controlplane: ControlPlane) -> Iterator[str]:
    name = controlplane.namespace("kj-test")
    yield name
    controlplane.delete_namespace(name)
