"""The shared queue and event primitives, against a real Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from support.events import submission_state

from kubejudge import events, protocol, queue


async def test_a_token_is_in_the_queue_at_most_once(redis: Redis) -> None:
    await queue.ensure_group(redis, "p")
    first = await queue.enqueue(redis, pool="p", token="t1")
    again = await queue.enqueue(redis, pool="p", token="t1")
    assert first is not None and again is None
    assert await redis.xlen(protocol.queue_stream("p")) == 1
    assert await queue.backlog(redis, "p") == queue.Backlog(waiting=1, pending=0)


async def test_backlog_counts_waiting_and_delivered_entries(redis: Redis) -> None:
    await queue.ensure_group(redis, "p")
    for token in ("a", "b", "c"):
        await queue.enqueue(redis, pool="p", token=token)
    await redis.xreadgroup(protocol.QUEUE_GROUP, "w1", {protocol.queue_stream("p"): ">"}, count=2)
    assert await queue.backlog(redis, "p") == queue.Backlog(waiting=1, pending=2)


async def test_backlog_of_an_unknown_pool_is_empty(redis: Redis) -> None:
    assert (await queue.backlog(redis, "nowhere")).total == 0


async def test_nothing_waiting_has_no_age(redis: Redis) -> None:
    assert await queue.oldest_waiting_age_ms(redis, "nowhere") == 0
    await queue.ensure_group(redis, "p")
    assert await queue.oldest_waiting_age_ms(redis, "p") == 0


async def test_the_oldest_waiting_age_follows_the_first_undelivered_entry(redis: Redis) -> None:
    await queue.ensure_group(redis, "p")
    first = await queue.enqueue(redis, pool="p", token="a")
    await asyncio.sleep(0.2)
    second = await queue.enqueue(redis, pool="p", token="b")
    assert first is not None and second is not None

    async def age_within_clock_reads(entry_id: str) -> int:
        enqueued_ms = int(entry_id.split("-")[0])
        before = protocol.now_ms()
        age = await queue.oldest_waiting_age_ms(redis, "p")
        assert before - enqueued_ms <= age <= protocol.now_ms() - enqueued_ms
        return age

    assert await age_within_clock_reads(first) >= 200
    await redis.xreadgroup(protocol.QUEUE_GROUP, "w1", {protocol.queue_stream("p"): ">"}, count=1)
    await age_within_clock_reads(second)  # "a" is being judged now, not waiting
    await redis.xreadgroup(protocol.QUEUE_GROUP, "w1", {protocol.queue_stream("p"): ">"}, count=1)
    assert await queue.oldest_waiting_age_ms(redis, "p") == 0


async def test_without_a_group_every_entry_waits(redis: Redis) -> None:
    first = await queue.enqueue(redis, pool="p", token="a")
    assert first is not None
    age = await queue.oldest_waiting_age_ms(redis, "p")
    assert 0 <= age <= protocol.now_ms() - int(first.split("-")[0])


async def test_an_event_lands_in_history_and_on_both_channels(redis: Redis) -> None:
    pubsub = redis.pubsub()
    await pubsub.subscribe(protocol.user_channel("alice"), protocol.verdict_channel("t1"))
    for _ in range(2):
        await pubsub.get_message(timeout=1)  # the subscribe confirmations

    event = protocol.Event(type="verdict", token="t1", data=submission_state("t1"))
    event_id = await events.publish(redis, user_id="alice", event=event, history_length=100)

    received = [await pubsub.get_message(timeout=2) for _ in range(2)]
    by_channel = {message["channel"].decode(): message["data"] for message in received if message}
    assert events.parse_live(by_channel[protocol.user_channel("alice")]) == (event_id, event)
    assert by_channel[protocol.verdict_channel("t1")] == b"t1"
    [(history_id, fields)] = await redis.xrange(protocol.user_history("alice"))
    assert history_id.decode() == event_id
    assert protocol.Event.model_validate_json(fields[b"event"]) == event
    await pubsub.aclose()


async def test_history_stays_bounded(redis: Redis) -> None:
    event = protocol.Event(type="status", token="t", data=submission_state("t"))
    for _ in range(500):
        await events.publish(redis, user_id="bob", event=event, history_length=10)
    # MAXLEN ~ trims whole macro nodes, so allow one node's slack above the bound.
    assert await redis.xlen(protocol.user_history("bob")) <= 10 + 100
