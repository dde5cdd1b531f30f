from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from kubejudge import protocol
from kubejudge.languages import LANGUAGES
from kubejudge.settings import Settings
from kubejudge.statuses import DESCRIPTIONS, Status


def test_queue_entry_round_trips_through_stream_fields() -> None:
    entry = protocol.QueueEntry(token="abc")
    assert protocol.QueueEntry.from_fields(entry.fields()) == entry


def test_every_key_lives_under_the_prefix() -> None:
    keys = [
        protocol.queue_stream("p"),
        protocol.dead_letter_stream("p"),
        protocol.enqueued_marker("t"),
        protocol.worker_heartbeat("p", "w"),
        protocol.worker_index("p"),
        protocol.user_history("u"),
        protocol.user_channel("u"),
        protocol.verdict_channel("t"),
        protocol.rate_limit_counter("u", 1),
        protocol.address_rate_limit_counter("u", 1),
        protocol.problem_cache(1),
        protocol.PROBLEM_LIST_CACHE,
    ]
    assert all(key.startswith(f"{protocol.PREFIX}:") for key in keys)
    assert len(set(keys)) == len(keys)


def test_statuses_match_judge0() -> None:
    assert [int(status) for status in Status] == list(range(1, 15))
    assert Status.RUNTIME_ERROR_NZEC.public() == {"id": 11, "description": "Runtime Error (NZEC)"}
    assert set(DESCRIPTIONS) == set(Status)
    assert not Status.PROCESSING.is_final and Status.INTERNAL_ERROR.is_final


def test_every_judge0_id_we_promise_is_served() -> None:
    assert {48, 49, 50, 52, 53, 54, 60, 62, 63, 71, 73} <= set(LANGUAGES)


def test_pool_routing_prefers_the_named_pool() -> None:
    settings = Settings(pools={"compiled": ["c", "cpp"], "rest": ["*"]})
    assert settings.pool_for("cpp") == "compiled"
    assert settings.pool_for("python") == "rest"


@pytest.mark.parametrize("language_id", sorted(LANGUAGES))
def test_a_language_goes_to_the_pool_of_its_family(language_id: int) -> None:
    settings = Settings(pools={"compiled": ["c", "cpp"], "rest": ["*"]})
    family = LANGUAGES[language_id].family
    expected = "compiled" if family in ("c", "cpp") else "rest"
    assert settings.pool_for_language(language_id) == expected


def test_pools_reject_unknown_families() -> None:
    with pytest.raises(ValidationError, match="unknown language families"):
        Settings(pools={"x": ["cobol"]})


def test_database_url_gets_the_async_driver() -> None:
    settings = Settings(database_url="postgresql://u@h:5432/d")
    assert settings.sqlalchemy_url == "postgresql+asyncpg://u@h:5432/d"
    with pytest.raises(ValueError, match="expected a postgresql"):
        _ = Settings(database_url="mysql://u@h/d").sqlalchemy_url


def _row(**columns: object) -> SimpleNamespace:
    """The columns of a `submissions` row an event reads, Processing unless told."""
    return SimpleNamespace(**{
        "token": "0b9e", "status_id": 2, "language_id": 71, "problem_id": None, "time": None,
        "wall_time": None, "memory": None, "memory_limit_exceeded": None, "exit_code": None,
        "message": None, "test_results": None, "finished_at": None, **columns,
    })  # fmt: skip


def test_a_processing_submissions_event_is_all_nulls_but_who_and_what() -> None:
    data = protocol.SubmissionState.of(_row())
    assert data.model_dump_json() == (
        '{"token":"0b9e","status":{"id":2,"description":"Processing"},"language_id":71,'
        '"problem_id":null,"time":null,"wall_time":null,"memory":null,'
        '"memory_limit_exceeded":false,"exit_code":null,"message":null,"tests":null,'
        '"finished_at":null}'
    )


def test_a_verdicts_event_carries_judge0s_formats_and_reaches_a_socket_whole() -> None:
    """Times as strings in seconds, memory in KB, finished_at in UTC with a Z: what the page
    and Judge0 clients read; the socket gets the same data under the event's id."""
    hidden = {"test": 2, "hidden": True, "status": Status.WRONG_ANSWER.public(), "time": None,
              "memory": None, "memory_limit_exceeded": False}  # fmt: skip
    visible = dict(hidden, test=1, hidden=False, time="0.010", memory=2048)
    row = _row(
        status_id=4, problem_id=7, time=Decimal("0.010"), wall_time=Decimal("0.052"), memory=2048,
        memory_limit_exceeded=False, exit_code=0, test_results=[visible, hidden],
        finished_at=datetime(2026, 12, 7, 3, 55, 4, 183589, tzinfo=UTC),
    )  # fmt: skip
    event = protocol.Event(type="verdict", token="0b9e", data=protocol.SubmissionState.of(row))
    data = json.loads(event.model_dump_json())["data"]
    assert data["status"] == {"id": 4, "description": "Wrong Answer"}
    assert (data["time"], data["wall_time"], data["memory"]) == ("0.010", "0.052", 2048)
    assert data["finished_at"] == "2026-12-07T03:55:04.183589Z"
    assert data["tests"] == [visible, hidden]
    assert protocol.Event.model_validate_json(event.model_dump_json()) == event
    message = json.loads(protocol.ServerMessage.of_event("5-0", event).model_dump_json())
    assert message == {"type": "verdict", "id": "5-0", "data": data}
