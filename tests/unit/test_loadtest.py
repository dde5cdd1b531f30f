"""The load test's pure parts: the schedule, reading verdicts off the socket, and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kubejudge_dev.loadtest.client import Verdict, parse_verdict
from kubejudge_dev.loadtest.driver import LoadResult, Record, _Run
from kubejudge_dev.loadtest.plan import LoadPlan
from kubejudge_dev.loadtest.programs import source_for
from kubejudge_dev.loadtest.report import percentiles, write_report
from kubejudge_dev.loadtest.sampler import Sample
from rich.progress import Progress


def test_open_loop_schedule_is_evenly_spaced_and_round_robin() -> None:
    plan = LoadPlan.open_loop(
        rate_per_s=4, duration_s=2, users=3, language_id=71, work_s=0, timeout_s=5
    )
    assert plan.offsets_s == (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75)
    assert [plan.user_of(i) for i in range(4)] == [
        "loadtest-0",
        "loadtest-1",
        "loadtest-2",
        "loadtest-0",
    ]


def test_sleep_work_needs_python() -> None:
    assert "time.sleep(0.5)" in source_for(language_id=71, work_s=0.5)
    with pytest.raises(ValueError, match="Python"):
        source_for(language_id=50, work_s=0.5)
    with pytest.raises(ValueError, match="language id"):
        source_for(language_id=9999, work_s=0)


def test_verdict_time_comes_from_the_event_id() -> None:
    raw = json.dumps(
        {"type": "verdict", "id": "1700000000123-4", "data": {"token": "t1", "status": {"id": 3}}}
    )
    event_id, verdict = parse_verdict(raw, received_at_ms=1700000000200)
    assert event_id == "1700000000123-4"
    assert verdict == Verdict(
        token="t1", status_id=3, verdict_at_ms=1700000000123, delivered_at_ms=1700000000200
    )
    status = json.dumps({"type": "status", "id": "5-0", "data": {"token": "t1"}})
    assert parse_verdict(status, received_at_ms=0) == ("5-0", None)
    assert parse_verdict("not json", received_at_ms=0) == (None, None)
    assert parse_verdict("[1, 2]", received_at_ms=0) == (None, None)


def test_percentiles_are_nearest_rank() -> None:
    assert percentiles([float(v) for v in range(1, 101)]) == {
        "p50": 50.0,
        "p95": 95.0,
        "p99": 99.0,
        "max": 100.0,
    }
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None}


def test_report_counts_lost_verdicts_and_draws_the_plot(tmp_path: Path) -> None:
    plan = LoadPlan.burst(count=3, users=1, language_id=71, work_s=0, timeout_s=1)
    t0 = 1_000_000
    result = LoadResult(plan=plan, started_at_ms=t0, finished_sending_at_ms=t0 + 10)
    result.records = [
        Record(
            index=0,
            user="u",
            sent_at_ms=t0,
            token="a",
            verdict=Verdict(
                token="a", status_id=3, verdict_at_ms=t0 + 400, delivered_at_ms=t0 + 405
            ),
        ),
        Record(index=1, user="u", sent_at_ms=t0, token="b", polled_status_id=3),
        Record(index=2, user="u", sent_at_ms=t0, error="HTTP 503"),
    ]
    result.samples = [
        Sample(at_ms=t0, backlog={"default": 2}, live_workers=1, desired={"default": 2}),
        Sample(
            at_ms=t0 + 500,
            backlog={"default": 0},
            live_workers=2,
            current={"default": 2},
            ready={"default": 1},
        ),
    ]
    result.duplicate_verdicts = 1
    summary = write_report(result, out=tmp_path / "report")
    assert summary["lost_verdicts"] == 1
    assert summary["lost_finished_but_not_delivered"] == 1
    assert summary["errors"] == {"total": 1, "by_kind": {"HTTP 503": 1}}
    assert summary["submit_to_verdict_ms"]["p50"] == 400.0
    assert summary["verdict_to_delivery_ms"]["max"] == 5.0
    assert summary["peak_backlog"] == 2
    assert summary["peak_ready_workers"] == 1
    assert summary["duplicate_verdicts"] == 1
    assert json.loads((tmp_path / "report" / "summary.json").read_text()) == summary
    assert (tmp_path / "report" / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_verdict_for_a_token_counts_as_a_duplicate() -> None:
    plan = LoadPlan.burst(count=1, users=1, language_id=71, work_s=0, timeout_s=1)
    result = LoadResult(plan=plan, started_at_ms=0)
    result.records = [Record(index=0, user="u", token="a")]
    run = _Run(result=result, http=None, jwts={"u": "jwt"}, bar=Progress(disable=True))  # type: ignore[arg-type]
    run.by_token["a"] = result.records[0]
    first = Verdict(token="a", status_id=3, verdict_at_ms=1, delivered_at_ms=2)
    run.on_verdict(first)
    assert result.duplicate_verdicts == 0 and result.records[0].verdict == first
    run.on_verdict(Verdict(token="a", status_id=3, verdict_at_ms=5, delivered_at_ms=6))
    assert result.duplicate_verdicts == 1 and result.records[0].verdict == first
