"""The worker loop: take entries from the pool's stream, judge them, record, publish, ack.

Per submission (DESIGN.md guarantees 1, 2 and 5):
    claim the row (attempt + 1, Processing) -> publish a `status` event -> judge in the
    sandbox -> write the verdict fenced by our attempt -> publish the `verdict` event -> XACK.
That is two PostgreSQL statements and three Redis round trips: the read, the heartbeat with the
status event, and the heartbeat with one script that publishes the verdict and then acks.
Each is shared by the submissions in flight (`batching`): one read fills every free slot, and
the claims, verdict writes, and Redis announcements (status events, publish-and-acks, the
heartbeat) that are ready while the one before is on the wire go out together; a lone
submission never waits for company. A slot is given back when its run ends, so the next
submission's claim and status event go out alongside this one's verdict write and publish.
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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

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
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._tokens: set[str] = set()
        self._tasks: dict[asyncio.Task[None], str] = {}  # -> the entry id it handles
        # A slot is a sandbox's worth of work: a task gives it back as soon as its run is over,
        # so the next submission starts while this one's verdict is still being recorded.
        self._with_slot: set[asyncio.Task[None]] = set()
        self._busy = BusyTime()
        self.released = False  # the drain timed out: judging threads may still be running
        self._left = False  # run() is done: the heartbeat loop ends
        self._claims = Batcher(self._claim)
        self._announcements = Batcher(self._announce)
        self._finishes = Batcher(self._finish)

    def stop(self) -> None:
        self.stopping.set()

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
        """Wait for a free slot, then fill it: a dead worker's entry first, else a new one.

        The blocking read is capped at the reclaim interval, so a free slot checks for
        orphaned entries that often even while no new work arrives.
        """
        block_ms = max(1, min(READ_BLOCK_MS, round(self.settings.reclaim_interval_s * 1000)))
        next_reclaim = 0.0
        loop = asyncio.get_running_loop()
        while await self._take_slot():
            free = 1
            while not self._slots.locked():  # every other free slot, at once: one read
                await self._slots.acquire()
                free += 1
            deliveries: list[queue.Delivery] = []
            try:
                if loop.time() >= next_reclaim:
                    next_reclaim = loop.time() + self.settings.reclaim_interval_s
                    deliveries = await queue.reclaim(
                        self.redis, pool=self.pool, consumer=self.worker_id, count=free,
                        held=set(self._tasks.values()),
                    )  # fmt: skip
                if not deliveries and not self.stopping.is_set():
                    deliveries = await queue.read(
                        self.redis,
                        pool=self.pool,
                        consumer=self.worker_id,
                        count=free,
                        block_ms=block_ms,
                    )
            except RedisError:
                log.exception("reading the queue failed; retrying")
                await asyncio.sleep(1)
            for _ in range(free - len(deliveries)):
                self._slots.release()
            for delivery in deliveries:
                if delivery.reclaimed:
                    log.info("reclaimed %s, which no live task held", delivery.entry.token)
                self._start(delivery)

    async def _take_slot(self) -> bool:
        """Wait for a free slot; False (holding none) once we are stopping, even while every
        slot is still busy, so the drain clock starts at SIGTERM."""
        acquiring = asyncio.ensure_future(self._slots.acquire())
        stopping = asyncio.ensure_future(self.stopping.wait())
        await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring
        if acquiring.done() and not acquiring.cancelled():
            if not self.stopping.is_set():
                return True
            self._slots.release()
        return False

    def _start(self, delivery: queue.Delivery) -> None:
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
            self._slots.release()

    async def _hold_slot(self, task: asyncio.Task[None]) -> None:
        """A retry judges again, so it waits for a slot like any new submission."""
        if task not in self._with_slot:
            await self._slots.acquire()
            self._with_slot.add(task)

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
        claim = await self._claims.submit(token)
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
        # Judging starts without waiting for the status event to go out; the verdict's event
        # waits for it, so a device never sees Processing after the verdict.
        announced = asyncio.ensure_future(self._announce_start(submission))
        try:
            verdict = await self._judge(claim)
        finally:
            self._tokens.discard(token)
            metrics.BUSY.labels(self.pool).dec()
            self._free_slot(task)
            await announced
        await self._record(delivery, submission, verdict)

    async def _announce_start(self, submission: record.Stored) -> None:
        """Best effort: a Redis outage here must not fail the delivery, whose retry would claim
        again and spend an attempt (enough of them end as a false Internal Error)."""
        with contextlib.suppress(RedisError, OSError):
            await self._announcements.submit(_Announcement(submission))

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
        final = await self._finishes.submit(_outcome(submission, verdict))
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

    async def _claim(self, tokens: Sequence[str]) -> list[record.Claim | None]:
        return await record.claim(self.pg, tokens, compile_limits=self.settings.compile_limits)

    async def _finish(self, outcomes: Sequence[record.Outcome]) -> list[record.Stored | None]:
        return await record.finish(self.pg, outcomes)

    async def _announce(self, announcements: Sequence[_Announcement]) -> list[None]:
        """`status` events, `verdict` events each with its ack (one atomic script each), and
        the heartbeat as it is now (listing the submissions being judged, no longer those
        with a verdict: the operator may pick an idle pod to remove), in one round trip. A
        submission's `status` event is always in an earlier one than its verdict."""
        async with self.redis.pipeline(transaction=True) as pipe:
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
            await pipe.execute()
        return [None] * len(announcements)

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


@dataclass(frozen=True, slots=True)
class _Announcement:
    """What goes to Redis about a submission: its `status` event (no delivery), or its
    `verdict` event and the ack of its delivery."""

    submission: record.Stored
    delivery: queue.Delivery | None = None


def _outcome(submission: record.Stored, verdict: Verdict) -> record.Outcome:
    return record.Outcome(
        token=submission.token,
        attempt=submission.attempt,
        verdict=verdict,
        finished_at=record.now(),
    )
