"""The worker's last Redis step: the verdict event, then the ack, in one atomic script (sent in
one round trip with the heartbeat), against a real Redis."""

from __future__ import annotations

from redis.asyncio import Redis
from support.events import submission_state

from kubejudge import events, protocol, queue

POOL = "p"


async def _delivered(redis: Redis, token: str) -> queue.Delivery:
    await queue.ensure_group(redis, POOL)
    assert await queue.enqueue(redis, pool=POOL, token=token) is not None
    [delivery] = await queue.read(redis, pool=POOL, consumer="w1", count=1, block_ms=100)
    return delivery


async def _settle(
    redis: Redis, delivery: queue.Delivery, user_id: str | None, *, raise_on_error: bool = True
) -> list[object]:
    token = delivery.entry.token
    event = protocol.Event(type="verdict", token=token, data=submission_state(token))
    outgoing = events.publication(user_id=user_id, event=event, history_length=100)
    async with redis.pipeline(transaction=True) as pipe:
        queue.add_publish_and_ack(pipe, pool=POOL, delivery=delivery, outgoing=outgoing)
        return await pipe.execute(raise_on_error=raise_on_error)


async def test_the_verdict_is_published_and_its_entry_acked_in_one_step(redis: Redis) -> None:
    delivery = await _delivered(redis, "t1")
    pubsub = redis.pubsub()
    await pubsub.subscribe(protocol.user_channel("alice"))
    await pubsub.get_message(timeout=1)  # the subscribe confirmation

    [event_id] = await _settle(redis, delivery, "alice")

    [(history_id, fields)] = await redis.xrange(protocol.user_history("alice"))
    assert event_id == history_id
    message = await pubsub.get_message(timeout=2)
    assert message is not None
    live_id, live = events.parse_live(message["data"])
    assert (live_id, live.token) == (history_id.decode(), "t1")
    assert live.model_dump_json() == fields[b"event"].decode()
    assert await queue.backlog(redis, POOL) == queue.Backlog(waiting=0, pending=0)
    assert not await redis.exists(protocol.enqueued_marker("t1"))
    await pubsub.aclose()


async def test_an_anonymous_verdict_only_wakes_waiters_and_is_acked(redis: Redis) -> None:
    delivery = await _delivered(redis, "t2")
    pubsub = redis.pubsub()
    await pubsub.subscribe(protocol.verdict_channel("t2"))
    await pubsub.get_message(timeout=1)

    assert await _settle(redis, delivery, None) == [None]

    message = await pubsub.get_message(timeout=2)
    assert message is not None and message["data"] == b"t2"
    assert await redis.keys(protocol.user_history("*")) == []
    assert (await queue.backlog(redis, POOL)).total == 0
    await pubsub.aclose()


async def test_a_retry_after_a_lost_reply_acks_without_a_second_event(redis: Redis) -> None:
    delivery = await _delivered(redis, "t4")
    [event_id] = await _settle(redis, delivery, "alice")
    assert await _settle(redis, delivery, "alice") == [None]  # as if the first reply was lost
    assert [entry_id for entry_id, _ in await redis.xrange(protocol.user_history("alice"))] == [
        event_id
    ]
    assert (await queue.backlog(redis, POOL)).total == 0


async def test_a_publish_that_fails_leaves_the_entry_pending(redis: Redis) -> None:
    delivery = await _delivered(redis, "t3")
    await redis.set(protocol.user_history("alice"), "not a stream")  # XADD will fail

    [outcome] = await _settle(redis, delivery, "alice", raise_on_error=False)

    assert isinstance(outcome, Exception) and "WRONGTYPE" in str(outcome)
    assert await queue.backlog(redis, POOL) == queue.Backlog(waiting=0, pending=1)
    assert await redis.exists(protocol.enqueued_marker("t3"))
