"""Event payloads for tests that publish events by hand instead of running a worker."""

from __future__ import annotations

from typing import Any

from kubejudge import protocol
from kubejudge.statuses import Status


def submission_state(token: str, **fields: Any) -> protocol.SubmissionState:
    """A finished, accepted submission's state, with `fields` set on top."""
    values: dict[str, Any] = {
        "token": token,
        "status": Status.ACCEPTED.public(),
        "language_id": 71,  # Python 3
        "problem_id": None,
        "time": "0.010",
        "wall_time": "0.020",
        "memory": 1000,
        "memory_limit_exceeded": False,
        "exit_code": 0,
        "message": None,
        "tests": None,
        "finished_at": "2026-01-01T00:00:00Z",
    }
    return protocol.SubmissionState.model_validate(values | fields)
