"""PodDisruptionBudgets: a drain or an upgrade takes one pod of a Deployment at a time."""

from __future__ import annotations

from typing import Any

from kubejudge_operator.resources.meta import labels_of, metadata
from kubejudge_operator.spec import Owner


def build_pdb(owner: Owner, name: str, selector: dict[str, str], component: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner, name, labels_of(owner, component)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
    }
