"""Faults in the middle of a burst, each ending with every accepted submission having exactly one
final verdict (guarantees 1, 3 and 5 of DESIGN.md, on real pods):

- a busy worker pod deleted with `--grace-period=0 --force` (its submission runs again elsewhere);
- the Redis pod deleted (the StatefulSet brings it back on the same volume, AOF replays);
- an api pod deleted (the other replica and the Service carry on);
- a scale-down while workers judge: only idle pods are taken, so no submission runs twice.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from support.polling import wait_until

from tests.e2e.judge import (
    Judge,
    assert_one_final_verdict_each,
    busy_pods,
    is_ready,
    start_burst,
)

POOL = "general"


def tokens_of(judge: Judge, since: str) -> list[str]:
    rows = judge.sql(f"SELECT token FROM submissions WHERE created_at >= '{since}'")  # noqa: S608
    return [token for (token,) in rows]


@pytest.fixture
def since(judge: Judge) -> str:
    """The database's clock now: the submissions a test makes are the ones created after it."""
    wait_until(lambda: judge.replicas(POOL) == 0, timeout=180, what="general pool idle at 0")
    ((now,),) = judge.sql("SELECT now()")
    return now


def test_a_busy_worker_pod_killed_outright_costs_a_rerun_not_a_verdict(
    judge: Judge, artifacts: Path, since: str
) -> None:
    burst = start_burst(judge, out=artifacts / "kill-worker", count=8, work_s=6)
    victims = wait_until(lambda: busy_pods(judge.redis_url, POOL), timeout=120, what="busy pod")
    victim = sorted(victims)[0]
    judge.kubectl("delete", "pod", victim, "--grace-period=0", "--force", "--wait=false")
    summary = burst.finish()
    assert_one_final_verdict_each(summary)
    assert summary["errors"]["total"] == 0, summary
    attempts = judge.attempts(tokens_of(judge, since))
    assert len(attempts) == 8
    assert max(attempts.values()) == 2, f"the killed pod's submission was not re-run: {attempts}"


def test_the_redis_pod_deleted_mid_burst_loses_no_verdict(
    judge: Judge, artifacts: Path, since: str
) -> None:
    burst = start_burst(judge, out=artifacts / "kill-redis", count=12, work_s=3)
    wait_until(lambda: busy_pods(judge.redis_url, POOL), timeout=120, what="judging under way")
    (redis,) = judge.pods("redis")
    judge.kubectl("delete", "pod", redis.metadata.name, "--wait=false")
    summary = burst.finish()
    assert_one_final_verdict_each(summary)
    assert summary["accepted"] + summary["errors"]["total"] == 12, summary
    assert len(judge.attempts(tokens_of(judge, since))) == summary["accepted"]


def test_an_api_pod_deleted_mid_burst_loses_no_accepted_submission(
    judge: Judge, artifacts: Path, since: str
) -> None:
    burst = start_burst(judge, out=artifacts / "kill-api", count=16, work_s=2)
    wait_until(lambda: busy_pods(judge.redis_url, POOL), timeout=120, what="judging under way")
    victim = judge.ready_pods("api")[0].metadata.name
    judge.kubectl("delete", "pod", victim, "--wait=false")
    summary = burst.finish()
    assert_one_final_verdict_each(summary)
    # A request the dying pod held may fail; one it answered 201 is never lost.
    stored = judge.attempts(tokens_of(judge, since))
    assert len(stored) >= summary["accepted"], (summary, len(stored))
    wait_until(lambda: len(judge.ready_pods("api")) == 2, timeout=120, what="api back to 2")


@pytest.fixture
def quick_scale_down(judge: Judge) -> Iterator[None]:
    """The general pool gives idle workers back after 2 s instead of the example's 30 s."""
    custom = client.CustomObjectsApi(judge.api_client)

    def set_delay(seconds: int) -> None:
        body = custom.get_namespaced_custom_object(
            "kubejudge.dev", "v1alpha1", judge.namespace, "judgeclusters", judge.name
        )
        pools = body["spec"]["workerPools"]
        for pool in pools:
            if pool["name"] == POOL:
                pool["scaleDownDelaySeconds"] = seconds
        custom.patch_namespaced_custom_object(
            "kubejudge.dev", "v1alpha1", judge.namespace, "judgeclusters", judge.name,
            {"spec": {"workerPools": pools}},
        )  # fmt: skip

    set_delay(2)
    try:
        yield
    finally:
        set_delay(30)


def test_scaling_down_while_workers_judge_takes_only_idle_pods(
    judge: Judge, artifacts: Path, since: str, quick_scale_down: None
) -> None:
    """Work of uneven length: as the short ones finish the pool shrinks while the long ones still
    run. Every pod taken away was idle when it was told to stop, and nothing ran twice."""
    terminated: dict[str, tuple[bool, float]] = {}  # pod -> (busy, when) at its deletion
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            busy = busy_pods(judge.redis_url, POOL)
            for pod in judge.pods("worker", POOL):
                name = pod.metadata.name
                if pod.metadata.deletion_timestamp is not None and name not in terminated:
                    terminated[name] = (name in busy, time.monotonic())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        long_burst = start_burst(judge, out=artifacts / "scale-down-long", count=2, work_s=20)
        short_burst = start_burst(judge, out=artifacts / "scale-down-short", count=10, work_s=1)
        short = short_burst.finish()
        long = long_burst.finish()
        long_done = time.monotonic()
        wait_until(lambda: judge.replicas(POOL) == 0, timeout=120, what="pool back to 0")
    finally:
        done.set()
        watcher.join()
    for summary in (short, long):
        assert_one_final_verdict_each(summary)
    assert not [pod for pod, (busy, _) in terminated.items() if busy], terminated
    during = [pod for pod, (_, at) in terminated.items() if at < long_done]
    assert during, f"the pool never shrank while the long submissions ran: {terminated}"
    attempts = judge.attempts(tokens_of(judge, since))
    assert len(attempts) == 12 and set(attempts.values()) == {1}, attempts
    assert all(is_ready(p) for p in judge.pods("redis")), "the store should be back by now"
