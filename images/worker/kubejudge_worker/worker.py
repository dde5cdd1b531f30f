"""The worker loop: take entries from the pool's stream, judge them, record, publish, ack.

Per submission (DESIGN.md guarantees 1, 2 and 5):
    claim the row (attempt + 1, Processing) -> publish a `status` event -> judge in the
    sandbox -> write the verdict fenced by our attempt -> publish the `verdict` event -> XACK.
Under load that is one PostgreSQL statement and one Redis round trip per submission. The
statement claims a slot's next submission and writes its last verdict. The round trip, the
announcement, carries the heartbeat, the verdict's script that publishes and then acks, the
status events of the runs that started meanwhile, and the read of the next entry. Both are
shared by the submissions in flight (`batching`): one read fills every free slot, and the
claims, verdict writes and announcements that are ready while the one before is on the wire
go out together; a lone submission never waits for company. A status event may wait a moment
for some (`STATUS_EVENT_WITHIN_S`): a run shorter than that sends it with its verdict.
While every slot is busy the worker holds one more entry, read with an announcement, so a
slot that frees starts its next run at once, and its claim goes with the verdict of the run
that just ended. A held entry is not claimed: a worker that dies or stops leaves it for
another to reclaim, with no attempt spent.
A duplicate delivery of a final submission is acked and skipped; a verdict fenced out by a
newer attempt is dropped, and so is its entry unless another worker reclaimed it (then the
newer attempt's worker acks it). Entries of workers
whose heartbeat expired are reclaimed; past `max_attempts` the submission ends as Internal
Error and is dead-lettered. `stop()` (SIGTERM) stops intake, lets running submissions finish
within `drain_timeout_s`, then releases the rest by removing our heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, cast

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubejudge import events, protocol, queue
from kubejudge.statuses import Status
from kubejudge_worker import heartbeat, metrics, record
from kubejudge_worker.batching import Batcher
from kubejudge_worker.busytime import BusyTime
from kubejudge_worker.judge import Verdict, judge
from kubejudge_worker.sandbox import Sandbox, SandboxError
from kubejudge_worker.settings import WorkerSettings

log = logging.getLogger(__name__)
READ_BLOCK_MS = 1000
# Entries held, beyond the free slots, for the next slot to free: one, so a slot goes from one
# run to the next without a read in between, and no entry waits behind more than one run here
# while another worker may be idle.
READ_AHEAD = 1
# A status event that no other announcement has taken along by then goes alone: Processing
# shown this late is not noticed, and most runs end sooner, sending it with their verdict.
STATUS_EVENT_WITHIN_S = 0.05
INFRA_RETRIES = 5
REDIS_RETRY_MAX_S = 5.0


class Worker:
    def __init__(
        self,
        *,
        settings: WorkerSettings,
        sandbox: Sandbox,
        redis: Redis,
        pg: asyncpg.Pool,
        worker_id: str,
    ) -> None:
        self.settings = settings
        self.sandbox = sandbox
        self.redis = redis
        self.pg = pg
        self.worker_id = worker_id
        self.pool = settings.pool
        self.stopping = asyncio.Event()
        # A slot is a sandbox's worth of work: a task gives it back as soon as its run is over,
        # so the next submission starts while this one's verdict is still being recorded.
        self._free = settings.concurrency  # slots no task holds
        self._with_slot: set[asyncio.Task[None]] = set()
        self._held: deque[queue.Delivery] = deque()  # read while every slot was busy
        self._changed = asyncio.Event()  # a slot was freed, a read came back, or stopping
        self._reading = False  # one read at a time, or two could take more than there is room
        self._tokens: set[str] = set()
        self._tasks: dict[asyncio.Task[None], str] = {}  # -> the entry id it handles
        self._busy = BusyTime()
        self.released = False  # the drain timed out: judging threads may still be running
        self._left = False  # run() is done: the heartbeat loop ends
        # Claims and verdict writes share statements: a slot's next claim goes with its last
        # verdict. Statements go one after another, in the order their items were queued, so a
        # claim queued after a verdict of its submission (a duplicate entry, held meanwhile)
        # finds the row final, as one entry after the other would.
        self._statements: Batcher[str | record.Outcome, _Written] = Batcher(self._write)
        self._announcements = Batcher(self._announce)

    def stop(self) -> None:
        self.stopping.set()
        self._changed.set()

    @property
    def ready(self) -> bool:
        return not self.stopping.is_set()

    async def run(self) -> None:
        await queue.ensure_group(self.redis, self.pool)
        await self._beat()
        beating = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._read_loop()
            await self._drain()
        finally:
            # The flag as well as the cancel: redis-py (on Python 3.11) can swallow a
            # CancelledError that lands while it sends, and the loop would then beat on.
            self._left = True
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            await heartbeat.stop(self.redis, pool=self.pool, worker_id=self.worker_id)

    async def _read_loop(self) -> None:
        """While a slot is free, fill it: a dead worker's entry first, else new ones, plus
        `READ_AHEAD` to hold. While every slot is busy, reads go with announcements instead.

        The blocking read is capped at the reclaim interval, so a free slot checks for
        orphaned entries that often even while no new work arrives.
        """
        block_ms = max(1, min(READ_BLOCK_MS, round(self.settings.reclaim_interval_s * 1000)))
        next_reclaim = 0.0
        loop = asyncio.get_running_loop()
        while not self.stopping.is_set():
            if not self._free or self._reading:
                self._changed.clear()
                await self._changed.wait()
                continue
            deliveries: list[queue.Delivery] = []
            self._reading = True
            try:
                if loop.time() >= next_reclaim:
                    next_reclaim = loop.time() + self.settings.reclaim_interval_s
                    deliveries = await queue.reclaim(
                        self.redis, pool=self.pool, consumer=self.worker_id,
                        count=self._room(), held=self._entries_in_hand(),
                    )  # fmt: skip
                    for delivery in deliveries:
                        log.info("reclaimed %s, which no live task held", delivery.entry.token)
                if not deliveries and not self.stopping.is_set():
                    deliveries = await queue.read(
                        self.redis,
                        pool=self.pool,
                        consumer=self.worker_id,
                        count=self._room(),
                        block_ms=block_ms,
                    )
            except RedisError:
                log.exception("reading the queue failed; retrying")
                await asyncio.sleep(1)
            finally:
                self._reading = False
            self._take(deliveries)
        if self._held:
            log.info("leaving %d entries read ahead to another worker", len(self._held))

    def _room(self) -> int:
        """How many entries to read: one for each free slot, and those to hold."""
        return self._free + READ_AHEAD - len(self._held)

    def _entries_in_hand(self) -> Collection[str]:
        return {*self._tasks.values(), *(delivery.entry_id for delivery in self._held)}

    def _take(self, deliveries: Sequence[queue.Delivery]) -> None:
        self._held.extend(deliveries)
        self._start_held()

    def _start_held(self) -> None:
        """Start held entries in the free slots; none once we are stopping."""
        while self._held and self._free and not self.stopping.is_set():
            self._free -= 1
            self._start(self._held.popleft())

    def _start(self, delivery: queue.Delivery) -> None:
        """Judge `delivery` in a slot already taken for it."""
        task = asyncio.create_task(self._handle(delivery))
        self._tasks[task] = delivery.entry_id
        self._with_slot.add(task)
        self._busy.started(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._busy.finished(task)
        self._free_slot(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("judging failed", exc_info=task.exception())

    def _free_slot(self, task: asyncio.Task[None]) -> None:
        if task in self._with_slot:
            self._with_slot.discard(task)
            self._free += 1
            self._start_held()
            self._changed.set()

    async def _hold_slot(self, task: asyncio.Task[None]) -> None:
        """A retry judges again, so it waits for a slot like any new submission."""
        while task not in self._with_slot:
            if self._free:
                self._free -= 1
                self._with_slot.add(task)
            else:
                self._changed.clear()
                await self._changed.wait()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        log.info("draining %d running submission(s)", len(self._tasks))
        _, running = await asyncio.wait(self._tasks, timeout=self.settings.drain_timeout_s)
        for task in running:  # released: our heartbeat goes, another worker reclaims them
            task.cancel()
            self.released = True
        await asyncio.gather(*running, return_exceptions=True)

    async def _handle(self, delivery: queue.Delivery) -> None:
        task = asyncio.current_task()
        assert task is not None  # always run as a task (`_start`)
        for attempt in range(INFRA_RETRIES):
            try:
                await self._hold_slot(task)
                await self._judge_delivery(delivery, task)
                return
            except (RedisError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                log.exception("infrastructure error on %s", delivery.entry.token)
                await asyncio.sleep(0.5 * 2**attempt)
        token = delivery.entry.token
        log.error("leaving %s pending after %d tries, for a later reclaim", token, INFRA_RETRIES)

    async def _judge_delivery(self, delivery: queue.Delivery, task: asyncio.Task[None]) -> None:
        token = delivery.entry.token
        claim = cast(record.Claim | None, await self._statements.submit(token))
        if claim is None:  # final already (a duplicate delivery) or deleted
            await queue.ack(self.redis, pool=self.pool, delivery=delivery)
            return
        submission = claim.submission
        source = "reclaimed" if delivery.reclaimed else "new"
        metrics.ATTEMPTS.labels(self.pool, source).inc()
        if submission.attempt > self.settings.max_attempts:
            await self._give_up(delivery, submission)
            return
        if submission.attempt == 1:
            wait_s = (protocol.now_ms() - delivery.entry.enqueued_at_ms) / 1000
            metrics.QUEUE_WAIT_SECONDS.labels(self.pool).observe(max(wait_s, 0))
        self._tokens.add(token)
        metrics.BUSY.labels(self.pool).inc()
        self._announce_start(submission)
        try:
            verdict = await self._judge(claim)
        finally:
            self._tokens.discard(token)
            metrics.BUSY.labels(self.pool).dec()
            self._free_slot(task)
        await self._record(delivery, submission, verdict)

    def _announce_start(self, submission: record.Stored) -> None:
        """The status event, queued before judging starts. The verdict's event is queued
        after it, so it goes in the same round trip or a later one: a device never sees
        Processing after the verdict. Best effort: a Redis outage here must not fail the
        delivery, whose retry would claim again and spend an attempt (enough of them end as a
        false Internal Error)."""
        sent = self._announcements.put(_Announcement(submission), within_s=STATUS_EVENT_WITHIN_S)
        sent.add_done_callback(_ignore_failure)

    async def _judge(self, claim: record.Claim) -> Verdict:
        submission = claim.submission
        language_name = str(submission.language_id)
        with metrics.RUN_SECONDS.labels(self.pool, language_name).time():
            try:
                verdict = await asyncio.to_thread(judge, self.sandbox, claim.job)
            except (SandboxError, OSError, LookupError, ValueError) as error:
                log.exception("sandbox failure on %s", submission.token)
                verdict = Verdict(status=Status.INTERNAL_ERROR, message=str(error))
        if verdict.status is Status.INTERNAL_ERROR:
            metrics.SANDBOX_FAILURES.labels(self.pool).inc()
        return verdict

    async def _record(
        self, delivery: queue.Delivery, submission: record.Stored, verdict: Verdict
    ) -> None:
        final = cast(
            record.Stored | None, await self._statements.submit(_outcome(submission, verdict))
        )
        if final is None:
            metrics.FENCED.labels(self.pool).inc()
            log.warning("verdict for %s fenced out by a newer attempt", submission.token)
            await self._through_outage(
                "dropping a fenced-out entry",
                lambda: queue.drop_if_held(
                    self.redis, pool=self.pool, delivery=delivery, consumer=self.worker_id
                ),
            )
            with contextlib.suppress(RedisError):
                await self._beat()  # idle again: the operator may pick this pod to remove
            return
        metrics.VERDICTS.labels(self.pool, verdict.status.name, str(final.language_id)).inc()
        if final.finished_at is not None:
            # created_at is the database's clock, finished_at ours: clamp a small skew.
            waited = (final.finished_at - final.created_at).total_seconds()
            metrics.SUBMIT_TO_VERDICT_SECONDS.labels(str(final.language_id)).observe(max(0, waited))
        # The verdict is committed. Retrying the whole delivery now would find the row final
        # and ack it unpublished, losing the event, so these steps wait out Redis on their own.
        announcement = _Announcement(final, delivery)
        await self._through_outage(
            "publishing the verdict and acking",
            lambda: self._announcements.submit(announcement),
        )

    async def _through_outage(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run `step` until Redis takes it (a drain past its grace period cancels us)."""
        for attempt in itertools.count():
            try:
                await step()
                return
            except (RedisError, OSError) as error:
                log.warning("%s failed, retrying: %s", what, error)
                await asyncio.sleep(min(0.5 * 2**attempt, REDIS_RETRY_MAX_S))

    async def _give_up(self, delivery: queue.Delivery, submission: record.Stored) -> None:
        reason = (
            f"gave up after {self.settings.max_attempts} attempts: the worker judging this "
            "submission stopped every time (crash, out-of-memory kill or eviction)"
        )
        verdict = Verdict(status=Status.INTERNAL_ERROR, message=reason)
        [final] = await record.finish(self.pg, [_outcome(submission, verdict)])
        if final is not None:
            await self._through_outage(
                "publishing the verdict",
                lambda: events.send(self.redis, self._publication("verdict", final)),
            )
        await self._through_outage(
            "dead-lettering",
            lambda: queue.dead_letter(self.redis, pool=self.pool, delivery=delivery, reason=reason),
        )
        metrics.DEAD_LETTERS.labels(self.pool).inc()
        log.error("dead-lettered %s: %s", submission.token, reason)

    async def _write(self, items: Sequence[str | record.Outcome]) -> list[_Written]:
        """Claim the tokens and write the verdicts among `items`; each one's result."""
        tokens = [item for item in items if isinstance(item, str)]
        outcomes = [item for item in items if isinstance(item, record.Outcome)]
        claims, finals = await record.claim_and_finish(
            self.pg, tokens, outcomes, compile_limits=self.settings.compile_limits
        )
        claimed, finished = iter(claims), iter(finals)
        return [next(claimed) if isinstance(item, str) else next(finished) for item in items]

    async def _announce(self, announcements: Sequence[_Announcement]) -> list[RedisError | None]:
        """`status` events, `verdict` events each with its ack (one atomic script each, run in
        the order queued), the heartbeat as it is now (listing the submissions being judged,
        no longer those with a verdict: the operator may pick an idle pod to remove) and,
        while every slot is busy, the read of the entries to hold, in one round trip. A
        script that fails fails its own announcement only."""
        room = 0 if self._reading or self.stopping.is_set() else self._room()
        async with self.redis.pipeline(transaction=False) as pipe:
            for announcement in announcements:
                submission, delivery = announcement.submission, announcement.delivery
                if delivery is None:
                    events.add_publish(pipe, self._publication("status", submission))
                else:
                    outgoing = self._publication("verdict", submission)
                    queue.add_publish_and_ack(
                        pipe, pool=self.pool, delivery=delivery, outgoing=outgoing
                    )
            heartbeat.add_beat(pipe, self._heartbeat(), ttl_ms=self._heartbeat_ttl_ms)
            if room > 0:
                queue.add_read(pipe, pool=self.pool, consumer=self.worker_id, count=room)
                self._reading = True
            try:
                replies = await pipe.execute(raise_on_error=False)
            finally:
                if room > 0:
                    self._reading = False
                    self._changed.set()
        if room > 0:
            read = replies.pop()
            # A failed read (NOGROUP: Redis lost its data) is the read loop's to mend.
            if not isinstance(read, Exception):
                self._take(queue.deliveries(read))
        outcomes, beat = replies[: len(announcements)], replies[len(announcements) :]
        if failed := [reply for reply in beat if isinstance(reply, Exception)]:
            log.warning("the heartbeat failed; the heartbeat loop beats again: %s", failed[0])
        return [reply if isinstance(reply, RedisError) else None for reply in outcomes]

    def _publication(
        self, kind: Literal["status", "verdict"], submission: record.Stored
    ) -> events.Publication:
        event = protocol.Event(
            type=kind, token=submission.token, data=protocol.SubmissionState.of(submission)
        )
        return events.publication(
            user_id=submission.owner, event=event, history_length=self.settings.history_length
        )

    def _heartbeat(self) -> protocol.Heartbeat:
        return protocol.Heartbeat(
            worker_id=self.worker_id,
            pool=self.pool,
            concurrency=self.settings.concurrency,
            tokens=sorted(self._tokens),
            pod_name=os.environ.get("KUBEJUDGE_POD_NAME"),
            sandbox_mode=self.sandbox.mode,
            busy_ms=self._busy.total_ms(),
        )

    @property
    def _heartbeat_ttl_ms(self) -> int:
        return round(self.settings.heartbeat_ttl_s * 1000)

    async def _beat(self) -> None:
        await heartbeat.beat(self.redis, self._heartbeat(), ttl_ms=self._heartbeat_ttl_ms)

    async def _heartbeat_loop(self) -> None:
        while not self._left:
            await asyncio.sleep(self.settings.heartbeat_ttl_s / 3)
            with contextlib.suppress(RedisError):
                await self._beat()


# A claim (or None: final or gone), or a verdict write's final row (or None: fenced out).
_Written = record.Claim | record.Stored | None


@dataclass(frozen=True, slots=True)
class _Announcement:
    """What goes to Redis about a submission: its `status` event (no delivery), or its
    `verdict` event and the ack of its delivery."""

    submission: record.Stored
    delivery: queue.Delivery | None = None


def _ignore_failure(sent: asyncio.Future[None]) -> None:
    if not sent.cancelled():
        sent.exception()  # retrieved, so asyncio does not log it as lost


def _outcome(submission: record.Stored, verdict: Verdict) -> record.Outcome:
    return record.Outcome(
        token=submission.token,
        attempt=submission.attempt,
        verdict=verdict,
        finished_at=record.now(),
    )
