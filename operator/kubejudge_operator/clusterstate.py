"""What the two loops of one JudgeCluster share: the re-apply (`reapply`) finds the Redis the
pools are read from and says how applying went; the autoscaler reads that Redis and writes all
the conditions to status."""

from __future__ import annotations

from dataclasses import dataclass, field

import kopf

from kubejudge_operator.conditions import Conditions


@dataclass
class ClusterState:
    conditions: Conditions = field(default_factory=Conditions)
    # The Redis of the queue, as the last successful re-apply found it; None before that.
    redis_url: str | None = None

    @classmethod
    def of(cls, memo: kopf.Memo) -> ClusterState:
        """This JudgeCluster's state: kopf gives each object one memo, shared by its handlers."""
        state: ClusterState = memo.setdefault("cluster", cls())
        return state
