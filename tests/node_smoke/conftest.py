"""Fixtures for the real-node tier (tests/node): one cluster per session, torn down at the end.
Set ``KUBEJUDGE_CLUSTER_DIR=.cluster`` to use the one ``make cluster-up`` started."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from node import fixture as nodefixture  # tests/ is on sys.path, as for support

Cluster = nodefixture.Cluster


def pytest_collection_finish(session: pytest.Session) -> None:
    # A cold build takes minutes: here it counts against no test's timeout.
    if os.environ.get("KUBEJUDGE_CLUSTER_DIR") or session.config.option.collectonly:
        return
    if any("cluster" in getattr(item, "fixturenames", ()) for item in session.items):
        nodefixture.build_binaries()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with nodefixture.cluster_session() as running:
        yield running
