"""What only the operator reads, on top of the shared `Settings` (same `KUBEJUDGE_*` variables)."""

from __future__ import annotations

from pydantic import Field

from kubejudge.settings import Settings
from kubejudge.wellknown import OPERATOR_METRICS_PORT


class OperatorSettings(Settings):
    # How often each JudgeCluster's pools are measured and resized (DESIGN.md: about 1 s).
    poll_interval_s: float = Field(default=1.0, gt=0, le=60)
    # How often every child is re-applied, putting back what was edited by hand; deletions
    # are put back at once (the operator watches its children).
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    # The operator's own /metrics (Prometheus); its liveness is kopf's --liveness endpoint.
    operator_metrics_port: int = Field(default=OPERATOR_METRICS_PORT, ge=0, le=65535)
