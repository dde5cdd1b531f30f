"""The contract between api, worker, gateway and operator: every Redis key and channel name,
and the schema of every message that crosses Redis or the WebSocket.

No other module spells a Redis key by hand; tests import from here too.

    kubejudge:queue:{pool}           stream   submissions waiting for a worker (group "workers")
    kubejudge:deadletter:{pool}      stream   submissions that ran out of attempts
    kubejudge:enqueued:{token}       string   present while a token sits in a queue stream
    kubejudge:published:{token}      string   its verdict event went out (10 min: dedupes retries)
    kubejudge:worker:{pool}:{id}     string   a worker's heartbeat (JSON `Heartbeat`), with a TTL
    kubejudge:workers:{pool}         zset     worker ids of a pool, scored by heartbeat expiry (ms)
    kubejudge:scaling:{pool}         string   the autoscaler's last decision (JSON `ScalingRecord`)
    kubejudge:history:{user}         stream   a user's recent events, for replay on reconnect
    kubejudge:user:{user}            channel  a user's live events (same payload as the history)
    kubejudge:verdict:{token}        channel  wakes `wait=true` requests for one submission
    kubejudge:ratelimit:{user}:{win} string   submissions a user made in one rate-limit window
    kubejudge:ratelimit-address:{address}:{win}
                                     string   the same for callers without a JWT, per address
    kubejudge:problem:{id}           string   cached problem (JSON), cache-aside
    kubejudge:problems               string   cached problem list (JSON), cache-aside
    kubejudge:reconciler             string   lease: which api process runs the reconciler now
"""

from __future__ import annotations

import time
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from kubejudge.statuses import Status

PREFIX = "kubejudge"
QUEUE_GROUP = "workers"
PROBLEM_LIST_CACHE = f"{PREFIX}:problems"
RECONCILER_LEASE = f"{PREFIX}:reconciler"


def queue_stream(pool: str) -> str:
    return f"{PREFIX}:queue:{pool}"


def dead_letter_stream(pool: str) -> str:
    return f"{PREFIX}:deadletter:{pool}"


def enqueued_marker(token: str) -> str:
    return f"{PREFIX}:enqueued:{token}"


def verdict_published(token: str) -> str:
    return f"{PREFIX}:published:{token}"


def worker_heartbeat(pool: str, worker_id: str) -> str:
    return f"{PREFIX}:worker:{pool}:{worker_id}"


def worker_index(pool: str) -> str:
    return f"{PREFIX}:workers:{pool}"


def scaling_record(pool: str) -> str:
    return f"{PREFIX}:scaling:{pool}"


def user_history(user_id: str) -> str:
    return f"{PREFIX}:history:{user_id}"


def user_channel(user_id: str) -> str:
    return f"{PREFIX}:user:{user_id}"


def verdict_channel(token: str) -> str:
    return f"{PREFIX}:verdict:{token}"


def rate_limit_counter(user_id: str, window: int) -> str:
    return f"{PREFIX}:ratelimit:{user_id}:{window}"


def address_rate_limit_counter(address: str, window: int) -> str:
    return f"{PREFIX}:ratelimit-address:{address}:{window}"


def problem_cache(problem_id: int) -> str:
    return f"{PREFIX}:problem:{problem_id}"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QueueEntry(Message):
    """One stream entry: which submission to judge. Limits and code live in PostgreSQL."""

    token: str
    enqueued_at_ms: int = Field(default_factory=now_ms)

    def fields(self) -> dict[str, str]:
        return {"token": self.token, "enqueued_at_ms": str(self.enqueued_at_ms)}

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> QueueEntry:
        return cls(token=fields["token"], enqueued_at_ms=int(fields["enqueued_at_ms"]))


class Heartbeat(Message):
    worker_id: str
    pool: str
    concurrency: int
    tokens: list[str] = Field(default_factory=list)  # the submissions it is judging now
    pod_name: str | None = None  # set in Kubernetes, so the operator can mark busy pods
    # How it isolates programs: "bwrap" or "rlimit" (weaker, opt-in), for /about and /workers.
    sandbox_mode: str | None = None
    # Slot-milliseconds spent judging since the worker started (a slot counts from delivery to
    # ack): readers derive how busy it was between two beats, which an instant `tokens` cannot
    # tell (a worker that never waits is idle for a moment between any two submissions).
    busy_ms: int = 0
    at_ms: int = Field(default_factory=now_ms)

    @property
    def busy(self) -> bool:
        return bool(self.tokens)


class ScalingRecord(Message):
    """What a pool's autoscaler (the operator, or `kubejudge dev`'s local pool) last decided;
    written on every poll with a short TTL, so a stale one disappears with its writer."""

    pool: str
    desired: int
    current: int
    reason: str
    at_ms: int = Field(default_factory=now_ms)


class PoolState(Message):
    """One pool as the page shows it. `busy` is derived from the workers' `busy_ms` (mean
    busy slots since the previous reading), `wanted` is None while no autoscaler reports."""

    pool: str
    waiting: int
    in_flight: int
    live: int
    busy: float
    wanted: int | None = None
    reason: str | None = None


class StatusRef(Message):
    """Judge0's `{"id", "description"}` status object."""

    id: int
    description: str


class ProblemTestOutcome(Message):
    """One test of a problem submission: the outcome only, never a test's input or output; of
    a hidden test no figure either (`time` and `memory` null, as in the row)."""

    test: int
    hidden: bool
    status: StatusRef
    time: str | None
    memory: int | None
    memory_limit_exceeded: bool


class JudgedRow(Protocol):
    """The columns of a `submissions` row that an event reports (an SQLAlchemy row has them)."""

    token: str
    status_id: int
    language_id: int
    problem_id: int | None
    time: Decimal | None
    wall_time: Decimal | None
    memory: int | None
    memory_limit_exceeded: bool | None
    exit_code: int | None
    message: str | None
    test_results: list[dict[str, Any]] | None
    finished_at: datetime | None


class SubmissionState(Message):
    """The `data` of a status or verdict event: a submission's public state, as the worker
    writes it (`of`) and the gateway and the page read it (`ServerMessage.of_event`).

    `time` and `wall_time` are strings in seconds and `memory` is in KB, as Judge0 returns them;
    `tests` is a problem submission's per-test outcomes, else null; `finished_at` is ISO-8601,
    null while Processing. Outputs are not included: events go to every device of the user and
    may be replayed, so clients fetch the full submission over HTTP when they want it. A hidden
    test's figures, exit code and message are null here as in the row.
    """

    token: str
    status: StatusRef
    language_id: int
    problem_id: int | None
    time: str | None
    wall_time: str | None
    memory: int | None
    memory_limit_exceeded: bool
    exit_code: int | None
    message: str | None
    tests: list[ProblemTestOutcome] | None
    finished_at: str | None

    @classmethod
    def of(cls, submission: JudgedRow) -> SubmissionState:
        """The event data of a row as it stands (the one place the wire's formats are made)."""
        finished_at = submission.finished_at
        return cls(
            token=submission.token,
            status=StatusRef.model_validate(Status(submission.status_id).public()),
            language_id=submission.language_id,
            problem_id=submission.problem_id,
            time=_seconds(submission.time),
            wall_time=_seconds(submission.wall_time),
            memory=submission.memory,
            memory_limit_exceeded=bool(submission.memory_limit_exceeded),
            exit_code=submission.exit_code,
            message=submission.message,
            tests=None
            if submission.test_results is None
            else [ProblemTestOutcome.model_validate(test) for test in submission.test_results],
            finished_at=None
            if finished_at is None
            else finished_at.isoformat().replace("+00:00", "Z"),
        )


def _seconds(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class Event(Message):
    """What a user's devices are told: a submission changed status or got its verdict.

    The same JSON goes into the user's history stream and onto the user's channel; the history
    entry id becomes the event id that clients resume from. Written with `model_dump_json`, read
    back with `model_validate_json`.
    """

    type: Literal["status", "verdict"]
    token: str
    data: SubmissionState
    created_at_ms: int = Field(default_factory=now_ms)


class ServerMessage(Message):
    """WebSocket server -> client. `id` is the event id to resume from (absent on errors).

    - `status`, `verdict`: an event (`of_event`); `data` is its `SubmissionState`.
    - `welcome`: first message of a connection opened without `last_event_id`; `id` is the
      feed's current position, so a later reconnect resumes from there.
    - `resync`: the history no longer covers what the device missed; refetch over HTTP, then
      carry on from `id`.
    - `pong`: the answer to a client `ping` (browsers cannot see WebSocket-level pongs).
    - `pools`: every worker pool's backlog and workers; `data.pools` is a list of `PoolState`.
      Only to sockets opened with `pools=1`: once live, then whenever it changes; the same to
      every such socket (not per user, no id).
    - `error`: a client message was refused; `data.message` says why. Nothing changed.
    """

    type: Literal["status", "verdict", "welcome", "resync", "pong", "pools", "error"]
    id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of_event(cls, event_id: str, event: Event) -> ServerMessage:
        """An event as a socket gets it: its data (which names the token) under its id."""
        return cls(type=event.type, id=event_id, data=event.data.model_dump())


class ClientMessage(Message):
    """WebSocket client -> server. `ping` is answered with `pong`: proof the path is alive."""

    type: Literal["ping"]
