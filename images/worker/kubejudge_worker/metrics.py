"""The worker's Prometheus metrics and its small HTTP port (/metrics, /healthz, /readyz)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from kubejudge.statuses import Status

VERDICTS = Counter(
    "kubejudge_worker_verdicts_total", "Final verdicts written", ["pool", "status", "language"]
)
RUN_SECONDS = Histogram(
    "kubejudge_worker_judge_seconds",
    "Wall time to judge one submission (compile and all tests)",
    ["pool", "language"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80),
)
QUEUE_WAIT_SECONDS = Histogram(
    "kubejudge_worker_queue_wait_seconds",
    "From enqueue to the start of judging",
    ["pool"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
SUBMIT_TO_VERDICT_SECONDS = Histogram(
    "kubejudge_worker_submit_to_verdict_seconds",
    "From the submission's creation to its verdict being written (the row's own timestamps)",
    ["language"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 300, 600),
)
SANDBOX_FAILURES = Counter(
    "kubejudge_worker_sandbox_failures_total",
    "Runs where the sandbox itself failed (Internal Error)",
    ["pool"],
)
ATTEMPTS = Counter(
    "kubejudge_worker_attempts_total",
    "Submissions started, by how the entry reached us (new or reclaimed from a dead worker)",
    ["pool", "source"],
)
DEAD_LETTERS = Counter(
    "kubejudge_worker_dead_letters_total", "Submissions given up after max attempts", ["pool"]
)
FENCED = Counter(
    "kubejudge_worker_fenced_total", "Verdicts dropped because a newer attempt owns it", ["pool"]
)
BUSY = Gauge("kubejudge_worker_busy", "Submissions being judged now", ["pool"])
SANDBOX_MODE = Gauge(
    "kubejudge_worker_sandbox_mode",
    "1 for the sandbox mode in use (bwrap or rlimit) and how memory is limited (cgroup or"
    " watched); the protections each combination holds: charts/kubejudge/README.md",
    ["mode", "memory"],
)
# Set to the sandbox's own count (a function gauge): one per concurrent box when all is well;
# more means box servers died and were replaced.
BOX_SERVERS_STARTED = Gauge(
    "kubejudge_worker_box_servers_started", "Box servers this worker has started"
)


# What a worker can write as a submission's final status.
FINAL_STATUSES = tuple(status for status in Status if status.is_final)


def initialize(pool: str, language_ids: Iterable[int]) -> None:
    """Every labelled series this worker can export, at zero, before its first scrape.

    A series that first appears at 1 is invisible to rate() and increase(), which count only
    what a series gains after its first sample: each new worker pod's first verdict (and first
    attempt, dead letter, ...) would be missing from the dashboard, and a panel of dead letters
    would say "No data" rather than 0.
    """
    languages = [str(language_id) for language_id in language_ids]
    for counter in (SANDBOX_FAILURES, DEAD_LETTERS, FENCED):
        counter.labels(pool)
    for source in ("new", "reclaimed"):
        ATTEMPTS.labels(pool, source)
    QUEUE_WAIT_SECONDS.labels(pool)
    BUSY.labels(pool)
    for language in languages:
        RUN_SECONDS.labels(pool, language)
        SUBMIT_TO_VERDICT_SECONDS.labels(language)
        for status in FINAL_STATUSES:
            VERDICTS.labels(pool, status.name, language)


async def serve(
    port: int,
    *,
    ready: Callable[[], bool],
    host: str = "0.0.0.0",  # noqa: S104
) -> asyncio.Server:
    """A tiny HTTP/1.0 server: enough for Prometheus and kubelet probes, nothing else."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) >= 2 else ""
            if path == "/metrics":
                status, body, kind = "200 OK", generate_latest(), CONTENT_TYPE_LATEST
            elif path == "/healthz":
                status, body, kind = "200 OK", b"ok\n", "text/plain"
            elif path == "/readyz":
                is_ready = ready()
                status = "200 OK" if is_ready else "503 Service Unavailable"
                body, kind = (b"ready\n" if is_ready else b"draining\n"), "text/plain"
            else:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            head = f"HTTP/1.0 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"\r\n" + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)
