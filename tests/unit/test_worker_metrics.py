"""A worker exports every series it can ever write at zero from its start, so rate() and
increase() see its first verdict (a series first scraped at 1 loses that 1 to them)."""

from __future__ import annotations

from kubejudge_worker import metrics
from prometheus_client import REGISTRY

from kubejudge.settings import Settings


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_a_new_worker_exports_its_pools_series_at_zero() -> None:
    settings = Settings(pools={"general": ["*"], "jvm": ["java"]})
    assert settings.language_ids("jvm") == [62]
    assert 62 not in settings.language_ids("general") and 71 in settings.language_ids("general")
    metrics.initialize("jvm", settings.language_ids("jvm"))
    for status in ("ACCEPTED", "WRONG_ANSWER", "TIME_LIMIT_EXCEEDED", "INTERNAL_ERROR"):
        labels = {"pool": "jvm", "status": status, "language": "62"}
        assert value("kubejudge_worker_verdicts_total", **labels) == 0.0, status
    assert (
        value("kubejudge_worker_verdicts_total", pool="jvm", status="IN_QUEUE", language="62")
        is None
    )
    assert value("kubejudge_worker_dead_letters_total", pool="jvm") == 0.0
    assert value("kubejudge_worker_attempts_total", pool="jvm", source="reclaimed") == 0.0
    assert value("kubejudge_worker_submit_to_verdict_seconds_count", language="62") == 0.0
    assert value("kubejudge_worker_busy", pool="jvm") == 0.0
