"""Run one load: open the users' sockets, send the plan's submissions on schedule, wait for
every verdict (or the timeout), then poll only the missing ones to tell lost deliveries from
submissions that never finished."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import httpx
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kubejudge.loadtest.client import Verdict, final_status, listen, submit, user_token
from kubejudge.loadtest.plan import LoadPlan
from kubejudge.loadtest.programs import EXPECTED_OUTPUT, source_for
from kubejudge.loadtest.sampler import ClusterRef, Sample, sample_until
from kubejudge.protocol import now_ms

__all__ = ["LoadError", "LoadPlan", "LoadResult", "Record", "Target", "run_load"]


class LoadError(Exception):
    """The load could not start: the api or the gateway is not there."""


@dataclass(frozen=True, slots=True)
class Target:
    api_url: str
    gateway_url: str
    jwt_secret: str | None  # None: ask the api's dev token endpoint
    connections: int = 64


@dataclass(slots=True)
class Record:
    """One submission's life as the load test saw it (times are wall-clock ms)."""

    index: int
    user: str
    sent_at_ms: int = 0
    accepted_at_ms: int | None = None
    token: str | None = None
    error: str | None = None  # HTTP status or exception name when not accepted
    verdict: Verdict | None = None
    polled_status_id: int | None = None  # final status seen over HTTP when no event came


@dataclass(slots=True)
class LoadResult:
    plan: LoadPlan
    started_at_ms: int
    finished_sending_at_ms: int = 0
    finished_at_ms: int = 0
    records: list[Record] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    resyncs: int = 0
    reconnects: int = 0
    duplicate_verdicts: int = 0  # a second verdict event for a token: guarantee 3 broken


async def run_load(
    *,
    plan: LoadPlan,
    target: Target,
    redis_url: str | None,
    pools: list[str],
    cluster: ClusterRef | None,
    sample_interval_s: float,
    observe_s: float,
    progress: bool,
) -> LoadResult:
    """Send `plan`, collect its verdicts, and keep sampling `observe_s` longer (the scale-down)."""
    result = LoadResult(plan=plan, started_at_ms=now_ms())
    result.records = [Record(index=i, user=plan.user_of(i)) for i in range(len(plan.offsets_s))]
    limits = httpx.Limits(max_connections=target.connections)
    async with httpx.AsyncClient(base_url=target.api_url, limits=limits, timeout=30) as http:
        users = sorted({record.user for record in result.records})
        try:
            jwts = {u: await user_token(http, user_id=u, secret=target.jwt_secret) for u in users}
        except httpx.HTTPError as error:
            raise LoadError(f"no user token from {target.api_url}: {error}") from None
        stop_sampling = asyncio.Event()
        sampler = asyncio.create_task(
            sample_until(
                stop_sampling,
                redis_url=redis_url,
                pools=pools,
                cluster=cluster,
                interval_s=sample_interval_s,
                into=result.samples,
            )
        )
        with _progress_bar(enabled=progress) as bar:
            run = _Run(result=result, http=http, jwts=jwts, bar=bar)
            await run.execute(gateway_url=target.gateway_url)
        await asyncio.sleep(observe_s)
        stop_sampling.set()
        await sampler
        await _poll_missing(http, result, jwts)
    return result


class _Run:
    """The moving parts of one load: sockets, sends, and the verdict bookkeeping."""

    def __init__(
        self, *, result: LoadResult, http: httpx.AsyncClient, jwts: dict[str, str], bar: Progress
    ) -> None:
        self.result = result
        self.plan = result.plan
        self.http = http
        self.jwts = jwts
        self.bar = bar
        self.source = source_for(language_id=self.plan.language_id, work_s=self.plan.work_s)
        self.by_token: dict[str, Record] = {}
        self.early: dict[str, Verdict] = {}  # verdicts whose POST had not answered yet
        self.all_verdicts = asyncio.Event()
        self.accepted_task = bar.add_task("accepted", total=len(result.records))
        self.verdicts_task = bar.add_task("verdicts", total=len(result.records))

    async def execute(self, *, gateway_url: str) -> None:
        stop_sockets: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        readies = {user: asyncio.Event() for user in self.jwts}
        sockets = [
            asyncio.create_task(
                listen(
                    gateway_url=gateway_url,
                    jwt=jwt,
                    on_verdict=self.on_verdict,
                    on_resync=self.on_resync,
                    ready=readies[user],
                    stop=asyncio.shield(stop_sockets),
                )
            )
            for user, jwt in self.jwts.items()
        ]
        try:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(ready.wait() for ready in readies.values())), timeout=30
                )
            except TimeoutError:
                raise LoadError(f"no WebSocket to {gateway_url} opened within 30 s") from None
            start = asyncio.get_running_loop().time()
            records, offsets = self.result.records, self.plan.offsets_s
            await asyncio.gather(
                *(self.send(r, start + o) for r, o in zip(records, offsets, strict=True))
            )
            self.result.finished_sending_at_ms = now_ms()
            self.check_done()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.all_verdicts.wait(), timeout=self.plan.timeout_s)
        finally:
            self.result.finished_at_ms = now_ms()
            stop_sockets.set_result(None)
            reconnects = await asyncio.gather(*sockets, return_exceptions=True)
            self.result.reconnects = sum(n for n in reconnects if isinstance(n, int))

    async def send(self, record: Record, at: float) -> None:
        await asyncio.sleep(max(0.0, at - asyncio.get_running_loop().time()))
        record.sent_at_ms = now_ms()
        try:
            response = await submit(
                self.http,
                jwt=self.jwts[record.user],
                source=self.source,
                language_id=self.plan.language_id,
                expected=EXPECTED_OUTPUT,
            )
        except httpx.HTTPError as error:
            record.error = type(error).__name__
            return
        if response.status_code != 201:
            record.error = f"HTTP {response.status_code}"
            return
        record.accepted_at_ms = now_ms()
        record.token = str(response.json()["token"])
        self.by_token[record.token] = record
        self.bar.advance(self.accepted_task)
        # The verdict may have raced ahead of the POST's answer.
        early = self.early.pop(record.token, None)
        if early is not None:
            self.on_verdict(early)

    def on_verdict(self, verdict: Verdict) -> None:
        record = self.by_token.get(verdict.token)
        if record is None:
            self.early[verdict.token] = verdict
            return
        if record.verdict is None:
            record.verdict = verdict
            self.bar.advance(self.verdicts_task)
            self.check_done()
        else:  # one socket per user: a second verdict event is a duplicate, replayed or not
            self.result.duplicate_verdicts += 1

    def on_resync(self) -> None:
        self.result.resyncs += 1

    def check_done(self) -> None:
        if self.result.finished_sending_at_ms and _outstanding(self.result) == 0:
            self.all_verdicts.set()


def _outstanding(result: LoadResult) -> int:
    return sum(1 for r in result.records if r.token is not None and r.verdict is None)


async def _poll_missing(http: httpx.AsyncClient, result: LoadResult, jwts: dict[str, str]) -> None:
    """Only for the count of lost verdicts: did a submission with no event finish anyway?"""
    for record in result.records:
        if record.token is not None and record.verdict is None:
            record.polled_status_id = await final_status(
                http, jwt=jwts[record.user], token=record.token
            )


def _progress_bar(*, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description:>9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )
