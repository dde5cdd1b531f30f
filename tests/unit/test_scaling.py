"""The pure scaling policy: table-driven cases, then properties checked by hypothesis."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubejudge.scaling import (
    Decision,
    Memory,
    Observation,
    PoolLimits,
    decide,
    need_for,
    wants_fewer,
)

LIMITS = PoolLimits(min_replicas=0, max_replicas=10, target_backlog_per_worker=2,
                    scale_down_delay_s=30)  # fmt: skip


def seen(
    waiting: int = 0, pending: int = 0, busy: int = 0, current: int = 0, *, marking: bool = False
) -> Observation:
    return Observation(
        waiting=waiting, pending=pending, busy=busy, current=current, marking=marking
    )


@pytest.mark.parametrize(
    ("observation", "desired", "reason_starts"),
    [
        (seen(), 0, "steady"),  # idle at zero stays at zero
        (seen(waiting=1), 1, "scale up 0 -> 1"),  # wakes on the first entry, within one poll
        (seen(waiting=7, current=1), 4, "scale up 1 -> 4"),  # straight to ceil(7 / 2)
        (seen(waiting=3, pending=4, busy=4, current=4), 4, "steady"),  # in-flight work counts
        (seen(waiting=500, current=2), 10, "scale up 2 -> 10"),  # capped by max
        (seen(waiting=0, current=5), 5, "hold 5"),  # wants fewer: wait for the delay first
    ],
)
def test_first_poll(observation: Observation, desired: int, reason_starts: str) -> None:
    decision = decide(limits=LIMITS, seen=observation, memory=Memory(), now=100.0)
    assert decision.desired == desired
    assert decision.reason.startswith(reason_starts), decision.reason


def test_capped_reason_names_the_max() -> None:
    decision = decide(limits=LIMITS, seen=seen(waiting=500), memory=Memory(), now=0.0)
    assert "capped at max 10" in decision.reason


def run(limits: PoolLimits, loads: list[Observation], *, step_s: float = 1.0) -> list[Decision]:
    """Poll once per `step_s` seconds; each poll sees the size the previous decision set."""
    memory, current, decisions = Memory(), loads[0].current, []
    for i, load in enumerate(loads):
        observation = Observation(load.waiting, load.pending, min(load.busy, current), current)
        decision = decide(limits=limits, seen=observation, memory=memory, now=i * step_s)
        decisions.append(decision)
        memory, current = decision.memory, decision.desired
    return decisions


def test_scales_down_only_after_the_delay_to_the_window_peak() -> None:
    loads = [seen(waiting=20, current=0)]  # burst: 10 workers
    loads += [seen(waiting=4)] * 20  # then less work for 20 s: still wants 2
    loads += [seen()] * 15  # then idle
    sizes = [d.desired for d in run(LIMITS, loads)]
    assert sizes[0] == 10
    assert sizes[1:31] == [10] * 30  # held for the whole 30 s delay
    assert sizes[31] == 2  # the highest need seen in the window, not the momentary 0
    # Idle now, but the delay window has restarted from the step down to 2.
    assert sizes[-1] == 2


def test_scale_to_zero_after_idle_delay() -> None:
    sizes = [d.desired for d in run(LIMITS, [seen(waiting=1)] + [seen()] * 31)]
    assert sizes[0] == 1 and sizes[30] == 1 and sizes[31] == 0


def test_a_busy_worker_is_never_scaled_away() -> None:
    loads = [seen(waiting=8, current=0)] + [seen(pending=1, busy=1)] * 40
    decisions = run(LIMITS, loads)
    assert decisions[-1].desired == 1
    # With the delay spent, the pool steps down to the busy workers and waits for them.
    limits = PoolLimits(min_replicas=0, max_replicas=10, target_backlog_per_worker=1,
                        scale_down_delay_s=0)  # fmt: skip
    decision = decide(limits=limits, seen=seen(busy=3, current=5), memory=Memory(), now=0)
    assert decision.desired == 3
    assert "keeping 3 busy" in decision.reason


def test_lowered_max_applies_at_once_but_keeps_busy() -> None:
    limits = PoolLimits(min_replicas=0, max_replicas=2, target_backlog_per_worker=1,
                        scale_down_delay_s=300)  # fmt: skip
    assert decide(limits=limits, seen=seen(current=6), memory=Memory(), now=0).desired == 2
    kept = decide(limits=limits, seen=seen(pending=4, busy=4, current=6), memory=Memory(), now=0)
    assert kept.desired == 4


def test_min_is_kept_when_idle() -> None:
    limits = PoolLimits(min_replicas=2, max_replicas=5, target_backlog_per_worker=1,
                        scale_down_delay_s=0)  # fmt: skip
    assert decide(limits=limits, seen=seen(current=0), memory=Memory(), now=0).desired == 2
    assert decide(limits=limits, seen=seen(current=5), memory=Memory(), now=0).desired == 2


IMMEDIATE = PoolLimits(min_replicas=0, max_replicas=10, target_backlog_per_worker=1,
                       scale_down_delay_s=0)  # fmt: skip


@pytest.mark.parametrize(
    ("limits", "observation", "shrunk"),
    [
        (IMMEDIATE, seen(busy=3, current=5), 3),  # the delay is spent
        (PoolLimits(0, 2, 1, 300), seen(busy=1, current=6), 2),  # above a lowered max
    ],
)
def test_no_scale_down_while_busy_pods_are_being_marked(
    limits: PoolLimits, observation: Observation, shrunk: int
) -> None:
    memory = Memory(below_since=-50.0, recent=((-50.0, 1),))
    plain = decide(limits=limits, seen=observation, memory=memory, now=0)
    assert plain.desired == shrunk  # what the same poll decides with the costs already in place
    marking = dataclasses.replace(observation, marking=True)
    held = decide(limits=limits, seen=marking, memory=memory, now=0)
    assert held.desired == observation.current and not held.changed
    assert held.reason == f"hold {observation.current}: marking busy pods before scaling down"
    # The memory is the one it was given, so the next poll shrinks without a new delay.
    assert held.memory == memory
    after = decide(limits=limits, seen=observation, memory=held.memory, now=1)
    assert after.desired == shrunk


def test_a_marked_scale_down_waits_one_poll_not_a_new_delay() -> None:
    memory = Memory()
    for now in range(1, 31):  # idle at 3 from 1 s on: the 30 s delay is spent at 31 s
        memory = decide(limits=LIMITS, seen=seen(current=3), memory=memory, now=now).memory
    assert decide(limits=LIMITS, seen=seen(current=3), memory=memory, now=31).desired == 0
    held = decide(limits=LIMITS, seen=seen(current=3, marking=True), memory=memory, now=31)
    assert held.desired == 3
    assert decide(limits=LIMITS, seen=seen(current=3), memory=held.memory, now=32).desired == 0


@pytest.mark.parametrize(
    ("observation", "desired"),
    [
        (seen(waiting=7, current=1, marking=True), 7),  # scaling up never waits for marks
        (seen(waiting=4, busy=4, current=4, marking=True), 4),  # steady
        (seen(busy=2, current=5, marking=True), 5),  # nothing to hold: the delay is not spent
    ],
)
def test_marking_holds_only_a_scale_down(observation: Observation, desired: int) -> None:
    limits = PoolLimits(min_replicas=0, max_replicas=10, target_backlog_per_worker=1,
                        scale_down_delay_s=30)  # fmt: skip
    decision = decide(limits=limits, seen=observation, memory=Memory(), now=0)
    assert decision.desired == desired
    assert "marking" not in decision.reason


@pytest.mark.parametrize(
    ("observation", "fewer"),
    [
        (seen(current=0), False),
        (seen(waiting=4, current=2), False),  # needs 2 (2 per worker)
        (seen(waiting=3, current=2), False),
        (seen(waiting=2, current=2), True),  # needs 1
        (seen(pending=2, busy=2, current=5), True),
    ],
)
def test_wants_fewer_when_the_need_is_below_the_size(observation: Observation, fewer: bool) -> None:
    assert wants_fewer(LIMITS, observation) is fewer


def test_hold_keeps_the_size_and_says_why() -> None:
    memory = Memory(below_since=3.0, recent=((3.0, 1),))
    decision = Decision.hold(4, need=1, reason="because", memory=memory)
    assert (decision.current, decision.desired, decision.need) == (4, 4, 1)
    assert decision.reason == "hold 4: because"
    assert decision.memory == memory and not decision.changed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_replicas": 3, "max_replicas": 2},
        {"min_replicas": -1},
        {"target_backlog_per_worker": 0},
        {"scale_down_delay_s": -1},
    ],
)
def test_bad_limits_are_refused(kwargs: dict[str, int]) -> None:
    values = {"min_replicas": 0, "max_replicas": 5, "target_backlog_per_worker": 1,
              "scale_down_delay_s": 10} | kwargs  # fmt: skip
    with pytest.raises(ValueError, match="expected"):
        PoolLimits(**values)


# ---------------------------------------------------------------- properties

limits_st = st.builds(
    lambda low, span, target, delay: PoolLimits(
        min_replicas=low, max_replicas=low + span, target_backlog_per_worker=target,
        scale_down_delay_s=delay,
    ),
    st.integers(0, 5), st.integers(0, 30), st.integers(1, 8), st.integers(0, 60),
)  # fmt: skip
observation_st = st.builds(
    lambda waiting, pending, busy_share, current: Observation(
        waiting=waiting, pending=pending, busy=min(busy_share, current), current=current
    ),
    st.integers(0, 500), st.integers(0, 100), st.integers(0, 40), st.integers(0, 40),
)  # fmt: skip
memory_st = st.one_of(
    st.just(Memory()),
    st.builds(
        lambda since, needs: Memory(below_since=since, recent=tuple(
            (since + i, need) for i, need in enumerate(sorted(set(needs), reverse=True))
        )),
        st.floats(0, 1000), st.lists(st.integers(0, 40), max_size=5),
    ),
)  # fmt: skip


@given(limits=limits_st, observation=observation_st, memory=memory_st, now=st.floats(0, 2000))
def test_bounds(limits: PoolLimits, observation: Observation, memory: Memory, now: float) -> None:
    if memory.below_since is not None:  # the window cannot start in the future
        now = max(now, memory.below_since + len(memory.recent))
    decision = decide(limits=limits, seen=observation, memory=memory, now=now)
    assert decision.desired >= limits.min_replicas
    assert decision.desired >= min(observation.busy, observation.current)  # busy are kept
    # Never above max, except to keep busy workers that a lowered max would otherwise stop.
    assert decision.desired <= max(limits.max_replicas, observation.busy)
    if decision.desired > observation.current:
        assert decision.desired <= limits.max_replicas
    assert decision.reason


@given(limits=limits_st, observation=observation_st, extra=st.integers(0, 300))
def test_monotone_in_backlog(limits: PoolLimits, observation: Observation, extra: int) -> None:
    more = Observation(observation.waiting + extra, observation.pending, observation.busy,
                       observation.current)  # fmt: skip
    low = decide(limits=limits, seen=observation, memory=Memory(), now=0)
    high = decide(limits=limits, seen=more, memory=Memory(), now=0)
    assert high.desired >= low.desired
    assert need_for(limits, more.backlog) >= need_for(limits, observation.backlog)


@given(
    limits=limits_st,
    level=st.integers(0, 200),
    pattern=st.lists(st.integers(0, 4), min_size=1, max_size=10),
    start=st.integers(0, 40),
)
def test_no_flapping_on_a_steady_load(
    limits: PoolLimits, level: int, pattern: list[int], start: int
) -> None:
    """A steady load (a level plus noise that repeats within the scale-down delay) moves the
    size at most once up and once down: never up, down and up again."""
    limits = PoolLimits(
        min_replicas=limits.min_replicas,
        max_replicas=limits.max_replicas,
        target_backlog_per_worker=limits.target_backlog_per_worker,
        scale_down_delay_s=max(limits.scale_down_delay_s, len(pattern)),
    )
    loads = [seen(waiting=level + pattern[i % len(pattern)], current=start) for i in range(200)]
    sizes = [start] + [d.desired for d in run(limits, loads)]
    moves = [b - a for a, b in itertools.pairwise(sizes) if b != a]
    reversals = sum(1 for a, b in itertools.pairwise(moves) if (a > 0) != (b > 0))
    assert reversals <= 1, sizes
    if moves and moves[0] < 0:  # started too big: down to the load's peak, never back up
        assert all(m < 0 for m in moves), sizes
    assert sizes[-1] == need_for(limits, level + max(pattern))  # settles on the load's peak


def test_a_draining_pool_steps_down_to_zero() -> None:
    """Work that tails off: the size follows it down (one delay behind), to zero."""
    loads = [seen(waiting=40, current=0)] + [seen(waiting=max(0, 40 - i)) for i in range(120)]
    sizes = [d.desired for d in run(LIMITS, loads)]
    assert sizes[0] == 10
    assert all(b <= a for a, b in itertools.pairwise(sizes[1:]))  # never back up
    assert sizes[-1] == 0
