"""The replay decision on its own: does the history still reach back to the device's id?"""

from __future__ import annotations

import pytest
from kubejudge_gateway.replay import ORIGIN, EventId, History, HistoryEntry, Resync, plan
from support.events import submission_state

from kubejudge import protocol


def history(*, first: str, top: str, length: int, added: int, after: int = 0) -> History:
    entries = [
        HistoryEntry(
            id=EventId(2000, n),
            event=protocol.Event(type="status", token="t", data=submission_state("t")),
        )
        for n in range(after)
    ]
    return History(
        exists=True,
        top=EventId.parse(top),
        first=EventId.parse(first),
        length=length,
        entries_added=added,
        after=entries,
    )


def test_never_trimmed_history_covers_any_older_id() -> None:
    window = history(first="1500-0", top="2000-4", length=5, added=5, after=5)
    assert plan(last=EventId(1000, 0), history=window, limit=10) == window.after


def test_trimmed_history_covers_ids_from_just_before_its_oldest_entry() -> None:
    window = history(first="1500-3", top="2000-4", length=5, added=900, after=5)
    assert plan(last=EventId(1500, 2), history=window, limit=10) == window.after
    assert plan(last=EventId(1500, 3), history=window, limit=10) == window.after
    # 1500-1 < oldest-1: the entry 1500-2 may have existed and been trimmed.
    assert plan(last=EventId(1500, 1), history=window, limit=10) == Resync(EventId(2000, 4))
    assert plan(last=EventId(1499, 9), history=window, limit=10) == Resync(EventId(2000, 4))


def test_ids_beyond_the_top_and_replays_past_the_limit_resync() -> None:
    window = history(first="1500-0", top="2000-4", length=5, added=5, after=5)
    assert plan(last=EventId(2000, 5), history=window, limit=10) == Resync(EventId(2000, 4))
    assert plan(last=EventId(1000, 0), history=window, limit=4) == Resync(EventId(2000, 4))


def test_a_missing_stream_is_complete_only_from_the_origin() -> None:
    missing = History(exists=False, top=ORIGIN, first=None, length=0, entries_added=0, after=[])
    assert plan(last=ORIGIN, history=missing, limit=10) == []
    assert plan(last=EventId(1, 0), history=missing, limit=10) == Resync(ORIGIN)


@pytest.mark.parametrize("text", ["", "-", "12", "12-", "-3", "a-1", "1-2-3", "1 -2", "9" * 60])
def test_malformed_ids_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected an event id"):
        EventId.parse(text)


def test_ids_round_trip_and_order_like_redis() -> None:
    assert str(EventId.parse("1700000000000-12")) == "1700000000000-12"
    assert EventId.parse("9-10") > EventId.parse("9-9") > EventId.parse("8-99")
