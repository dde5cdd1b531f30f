"""The worker's group commit: a lone call goes at once, calls that come in while a batch is
out go together in the next, and a failed batch fails each of its callers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from kubejudge_worker.batching import Batcher


class Recorder:
    def __init__(self, *, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.fail = fail

    async def run(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await self.release.wait()
        if self.fail:
            raise ConnectionError("down")
        return [item * 10 for item in items]


async def test_a_lone_call_goes_at_once() -> None:
    recorder = Recorder()
    recorder.release.set()
    batcher = Batcher(recorder.run)
    async with asyncio.timeout(1):
        assert await batcher.submit(1) == 10
    assert recorder.batches == [[1]]


async def test_calls_made_while_a_batch_is_out_go_together_next() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    first = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first batch is out, waiting for its reply
    later = [asyncio.ensure_future(batcher.submit(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    recorder.release.set()
    async with asyncio.timeout(1):
        assert await asyncio.gather(first, *later) == [10, 20, 30, 40]
    assert recorder.batches == [[1], [2, 3, 4]]


async def test_a_failed_batch_fails_every_caller_and_the_next_still_goes() -> None:
    recorder = Recorder(fail=True)
    recorder.release.set()
    batcher = Batcher(recorder.run)
    calls = [asyncio.ensure_future(batcher.submit(n)) for n in (1, 2)]
    async with asyncio.timeout(1):
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(outcome) for outcome in outcomes] == [ConnectionError, ConnectionError]
    recorder.fail = False
    async with asyncio.timeout(1):
        assert await batcher.submit(3) == 30


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    gone = asyncio.ensure_future(batcher.submit(1))
    kept = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0)
    gone.cancel()
    recorder.release.set()
    async with asyncio.timeout(1):
        assert await kept == 20
    with pytest.raises(asyncio.CancelledError):
        await gone


async def test_a_call_that_may_wait_rides_with_the_next_batch_that_goes() -> None:
    recorder = Recorder()
    recorder.release.set()
    batcher = Batcher(recorder.run)
    patient = batcher.put(1, within_s=60)
    await asyncio.sleep(0.01)
    assert recorder.batches == []  # nothing else went: it waits
    async with asyncio.timeout(1):
        assert await batcher.submit(2) == 20
    assert await patient == 10
    assert recorder.batches == [[1, 2]]  # in the order they were put


async def test_a_call_that_may_wait_goes_alone_when_its_time_is_up() -> None:
    recorder = Recorder()
    recorder.release.set()
    batcher = Batcher(recorder.run)
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(1):
        assert await batcher.submit(1, within_s=0.05) == 10
    assert loop.time() - started >= 0.05
    assert recorder.batches == [[1]]


async def test_a_call_that_may_wait_is_not_sent_by_a_batch_already_on_the_wire() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.run)
    first = batcher.put(1)
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first batch is out
    patient = batcher.put(2, within_s=60)
    recorder.release.set()
    async with asyncio.timeout(1):
        assert await first == 10
    await asyncio.sleep(0.01)
    assert recorder.batches == [[1]]  # the patient call still waits for company
    assert await batcher.submit(3) == 30
    assert await patient == 20
    assert recorder.batches == [[1], [2, 3]]


async def test_an_item_that_failed_fails_its_own_caller_only() -> None:
    async def run(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError(item) if item == 2 else item * 10 for item in items]

    batcher = Batcher(run)
    first, failed, third = (batcher.put(n) for n in (1, 2, 3))
    async with asyncio.timeout(1):
        assert (await first, await third) == (10, 30)
        with pytest.raises(ValueError):
            await failed
