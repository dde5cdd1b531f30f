"""The ports and paths the roles, the operator and the chart agree on, written once.

A role's settings default to these, the operator builds pods and Services with them, and the
development tools connect to them. What cannot import Python (the chart's values, the Dockerfile's
EXPOSE lines, the page's JavaScript) is checked against them in tests/unit/test_wellknown.py.
"""

from __future__ import annotations

API_PORT = 2358  # Judge0's, so its clients work unchanged
GATEWAY_PORT = 2359
OPERATOR_METRICS_PORT = 9101
WORKER_METRICS_PORT = 9102  # the worker's /metrics, /healthz and /readyz
# Where the worker makes each run's box; the operator mounts an emptyDir here.
SANDBOX_ROOT = "/var/lib/kubejudge/sandbox"
