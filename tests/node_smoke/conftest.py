"""The real-node tier uses the session's node (the ``cluster`` fixture of tests/conftest.py).
Set ``KUBEJUDGE_CLUSTER_DIR=.cluster`` to use the one ``make cluster-up`` started."""

from __future__ import annotations

from node import fixture as nodefixture

Cluster = nodefixture.Cluster
