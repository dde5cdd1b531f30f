"""The `data` of the events a worker publishes: the one place that builds it.

    {"token", "status": {"id", "description"}, "language_id", "problem_id",
     "time", "wall_time", "memory", "memory_limit_exceeded", "exit_code", "message",
     "tests", "finished_at"}

`time` and `wall_time` are strings in seconds and `memory` is in KB, as Judge0 returns them;
`tests` is the per-test outcome list of a problem submission (status, time, memory; never
a test's data) or null; `finished_at` is ISO-8601, null while Processing. Outputs are not
included: events go to every device of the user and may be replayed, so clients fetch the
full submission over HTTP when they want it. A hidden test's figures, exit code and message
are null here as in the row (see `kubejudge_worker.judge`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from kubejudge.statuses import Status


def submission_event_data(submission: Row[Any]) -> dict[str, Any]:
    return {
        "token": submission.token,
        "status": Status(submission.status_id).public(),
        "language_id": submission.language_id,
        "problem_id": submission.problem_id,
        "time": None if submission.time is None else str(submission.time),
        "wall_time": None if submission.wall_time is None else str(submission.wall_time),
        "memory": submission.memory,
        "memory_limit_exceeded": bool(submission.memory_limit_exceeded),
        "exit_code": submission.exit_code,
        "message": submission.message,
        "tests": submission.test_results,
        "finished_at": None
        if submission.finished_at is None
        else submission.finished_at.isoformat().replace("+00:00", "Z"),
    }
