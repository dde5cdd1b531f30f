"""The busy figure the page and the load test show, derived from heartbeats' busy time."""

from __future__ import annotations

from kubejudge.poolview import BusyMeter
from kubejudge.protocol import Heartbeat


def beat(at_ms: int, busy_ms: int, *, tokens: tuple[str, ...] = (), worker: str = "w") -> Heartbeat:
    return Heartbeat(
        worker_id=worker, pool="p", concurrency=2, tokens=list(tokens), busy_ms=busy_ms, at_ms=at_ms
    )


def test_a_worker_busy_all_along_reads_busy_whatever_its_instant_says() -> None:
    meter = BusyMeter()
    assert meter.busy((beat(0, 0, tokens=("a",)),)) == 1.0  # first sight: its instant state
    assert meter.busy((beat(1000, 1000),)) == 1.0  # caught between two submissions
    assert meter.busy((beat(2000, 2000),)) == 1.0


def test_busy_is_the_mean_over_the_time_between_readings() -> None:
    meter = BusyMeter()
    meter.busy((beat(0, 0), beat(0, 0, worker="v")))
    assert meter.busy((beat(1000, 500), beat(1000, 2000, worker="v"))) == 0.5 + 2.0
    # No newer heartbeat since the last reading: the last rate stands.
    assert meter.busy((beat(1000, 500), beat(1000, 2000, worker="v"))) == 2.5


def test_a_gone_worker_is_forgotten_and_a_restarted_one_never_reads_negative() -> None:
    meter = BusyMeter()
    meter.busy((beat(0, 5000),))
    assert meter.busy(()) == 0.0
    assert meter.busy((beat(1000, 0),)) == 0.0  # seen afresh: its instant state
    meter.busy((beat(2000, 9000),))
    assert meter.busy((beat(3000, 100),)) == 0.0  # a new process under the same id
