from __future__ import annotations

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
