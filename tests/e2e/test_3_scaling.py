"""A burst from `kubejudge loadtest` through the api and gateway Services: the operator grows the
general pool from zero to several Running, Ready worker pods, every verdict reaches the WebSocket
clients, and the pool goes back to zero."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from support.polling import wait_until

from tests.e2e.judge import Judge, assert_one_final_verdict_each, scaling_record, start_burst

BURST = 24
WORK_S = 3.0  # each submission sleeps this long in the sandbox: it holds a worker


def test_a_burst_grows_the_general_pool_from_zero_and_it_returns_to_zero(
    judge: Judge, artifacts: Path
) -> None:
    wait_until(lambda: judge.replicas("general") == 0, timeout=120, what="general pool at zero")
    ready_seen: list[tuple[float, int]] = []
    desired_seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            ready_seen.append((time.monotonic(), len(judge.ready_pods("worker", "general"))))
            desired_seen.append(judge.status()["pools"]["general"]["desired"])
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        started = time.monotonic()
        burst = start_burst(judge, out=artifacts / "scaling", count=BURST, work_s=WORK_S)
        summary = burst.finish()
        assert_one_final_verdict_each(summary)
        assert summary["accepted"] == BURST and summary["errors"]["total"] == 0, summary
        assert summary["statuses"] == {"3": BURST}, summary
        # Back to zero once the scale-down delay has passed with nothing to do.
        wait_until(lambda: judge.replicas("general") == 0, timeout=180, what="pool back to 0")
        wait_until(lambda: not judge.pods("worker", "general"), timeout=120, what="pods gone")
    finally:
        done.set()
        watcher.join()
    peak = max(count for _, count in ready_seen)
    assert peak >= 2, f"at most {peak} general worker pod(s) were Ready"
    assert max(desired_seen) >= peak and desired_seen[-1] == 0, desired_seen
    # The report (and its plot) saw the same pods Ready, beside desired and current.
    assert summary["peak_ready_workers"] >= peak, summary
    # Every page's pool view shows what the operator decides, poll by poll.
    record = wait_until(lambda: scaling_record(judge.redis_url, "general"), what="decision")
    assert record.desired == 0 and record.reason, record
    plot = burst.report / "timeline.png"
    assert plot.stat().st_size > 10_000
    first_ready = next(t for t, count in ready_seen if count >= 1) - started
    print(f"first general worker Ready {first_ready:.1f} s after the burst began; peak {peak}")
