"""The report folder of one load: `summary.json` and `timeline.png`."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from kubejudge.loadtest.driver import LoadResult, Record

SUMMARY_FILE = "summary.json"
PLOT_FILE = "timeline.png"


def percentiles(values: list[float]) -> dict[str, float | None]:
    """Nearest-rank p50/p95/p99 and max; None for all when there is nothing to rank."""
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p95": None, "p99": None, "max": None}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"p50": rank(50), "p95": rank(95), "p99": rank(99), "max": ordered[-1]}


def summarize(result: LoadResult) -> dict[str, Any]:
    records = result.records
    accepted = [r for r in records if r.token is not None]
    delivered = [r for r in accepted if r.verdict is not None]
    undelivered = [r for r in accepted if r.verdict is None]
    errors = Counter(r.error for r in records if r.error is not None)
    first_sent = min((r.sent_at_ms for r in records), default=result.started_at_ms)
    last_verdict = max((r.verdict.verdict_at_ms for r in delivered if r.verdict), default=0)
    span_s = (last_verdict - first_sent) / 1000 if delivered else 0.0
    samples = result.samples
    return {
        "mode": result.plan.mode,
        "rate_per_s": result.plan.rate_per_s,
        "users": result.plan.users,
        "language_id": result.plan.language_id,
        "work_s": result.plan.work_s,
        "submissions": len(records),
        "accepted": len(accepted),
        "errors": {"total": sum(errors.values()), "by_kind": dict(errors)},
        "verdicts_delivered": len(delivered),
        "lost_verdicts": len(undelivered),
        "lost_finished_but_not_delivered": sum(1 for r in undelivered if r.polled_status_id),
        "lost_never_finished": sum(1 for r in undelivered if not r.polled_status_id),
        "duplicate_verdicts": result.duplicate_verdicts,
        "throughput_verdicts_per_s": round(len(delivered) / span_s, 2) if span_s > 0 else None,
        "send_duration_s": (result.finished_sending_at_ms - result.started_at_ms) / 1000,
        "submit_to_verdict_ms": percentiles([_submit_to_verdict(r) for r in delivered]),
        "verdict_to_delivery_ms": percentiles([_verdict_to_delivery(r) for r in delivered]),
        "statuses": dict(Counter(str(r.verdict.status_id) for r in delivered if r.verdict)),
        "resyncs": result.resyncs,
        "reconnects": result.reconnects,
        "peak_backlog": max((sum(s.backlog.values()) for s in samples if s.backlog), default=None),
        "peak_desired_workers": max(
            (sum(s.desired.values()) for s in samples if s.desired), default=None
        ),
        "peak_current_workers": max(
            (sum(s.current.values()) for s in samples if s.current), default=None
        ),
        "peak_ready_workers": max(
            (sum(s.ready.values()) for s in samples if s.ready), default=None
        ),
        "peak_live_workers": max(
            (s.live_workers for s in samples if s.live_workers is not None), default=None
        ),
    }


def write_report(result: LoadResult, *, out: Path) -> dict[str, Any]:
    """Write summary.json and timeline.png into `out` (created); returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    summary["plot"] = str(out / PLOT_FILE)
    (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    plot_timeline(result, path=out / PLOT_FILE)
    return summary


def plot_timeline(result: LoadResult, *, path: Path) -> None:
    import matplotlib  # only the report needs it, and only without a display

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    t0 = result.started_at_ms
    fig, (backlog, workers, throughput, latency) = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    times = [(s.at_ms - t0) / 1000 for s in result.samples]
    for pool in sorted({p for s in result.samples for p in s.backlog}):
        backlog.plot(times, [s.backlog.get(pool, 0) for s in result.samples], label=pool)
    backlog.set_ylabel("backlog")
    _series(workers, times, [sum(s.desired.values()) for s in result.samples], "desired", "--")
    _series(workers, times, [sum(s.current.values()) for s in result.samples], "current")
    _series(workers, times, [sum(s.ready.values()) for s in result.samples], "ready pods")
    _series(workers, times, [s.live_workers for s in result.samples], "live (heartbeats)")
    _series(workers, times, [s.busy_workers for s in result.samples], "busy")
    workers.set_ylabel("workers")
    delivered = [r for r in result.records if r.verdict is not None]
    seconds = Counter(int((r.verdict.verdict_at_ms - t0) / 1000) for r in delivered if r.verdict)
    if seconds:
        xs = range(max(seconds) + 1)
        throughput.bar(list(xs), [seconds.get(x, 0) for x in xs], width=1.0, align="edge")
    throughput.set_ylabel("verdicts/s")
    # By verdict time, on a log scale: seconds of queueing and milliseconds of delivery share it.
    at = [(r.verdict.verdict_at_ms - t0) / 1000 for r in delivered if r.verdict]
    latency.scatter(at, [_submit_to_verdict(r) for r in delivered], s=6, label="submit→verdict")
    latency.scatter(
        at, [max(_verdict_to_delivery(r), 0.5) for r in delivered], s=6, label="verdict→delivery"
    )
    if delivered:
        latency.set_yscale("log")
    latency.set_ylabel("ms (at verdict time)")
    latency.set_xlabel("seconds since start")
    for axis in (backlog, workers, latency):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(loc="upper right", fontsize="small")
    fig.suptitle(f"kubejudge loadtest: {result.plan.mode}, {len(result.records)} submissions")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _series(
    axis: Any, times: list[float], values: list[int | None], label: str, style: str = "-"
) -> None:
    points = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
    if any(v for _, v in points):
        xs, ys = [t for t, _ in points], [v for _, v in points]
        axis.step(xs, ys, style, where="post", label=label)


def _submit_to_verdict(record: Record) -> float:
    assert record.verdict is not None
    return float(record.verdict.verdict_at_ms - record.sent_at_ms)


def _verdict_to_delivery(record: Record) -> float:
    assert record.verdict is not None
    return float(record.verdict.delivered_at_ms - record.verdict.verdict_at_ms)
