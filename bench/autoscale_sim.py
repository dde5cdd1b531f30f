"""Replay arrival traces through our scaling policy and through a model of KEDA + HPA defaults.

    .venv/bin/python bench/autoscale_sim.py [--seeds 5] [--startup-s 5]

Both autoscalers drive the same simulated worker pool: the same arrivals, the same judging times
(random, seeded), the same pod start-up delay, one submission per worker at a time. Only the
scaler differs:

- ours: `kubejudge.scaling.decide` polled every 1 s with waiting + in-flight and the busy count;
  scale-downs remove starting, then idle pods (the pod-deletion cost puts busy ones last).
- KEDA + HPA with documented defaults (reference/autoscaling-and-operators.md §1-2): KEDA polls
  every 30 s and only wakes 0 -> 1 (and drops 1 -> 0 after a 300 s cooldown); the HPA syncs
  every 15 s on the waiting count only (KEDA's list/lag metric misses in-flight work), skips
  changes within 10 %, rises at most max(x2, +4) per sync, and scales down to the highest
  recommendation of the last 300 s. Its ReplicaSet removes not-ready pods first, then the most
  recently ready, busy or not: a busy pod removed is a killed submission, which is re-queued.

Reported per trace (median over seeds):
- react: the longest unbroken stretch in which the scaler had *asked for* fewer workers than
  the demand needed (need = ceil(in-system / target), capped by max): how long it takes to
  match demand. Pod start-up is the same for both and not the scaler's doing; the target
  (<= 1/10 of KEDA's) is on this column.
- ready: the same, counting only *ready* workers (so pod start-up included).
- p95 wait: 95th percentile of queue wait (arrival -> a worker starts it).
- worker-s: worker-seconds provisioned (starting pods included), until the pool is idle again.
- killed: busy workers removed by a scale-down.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from kubejudge_operator.spec import WorkerPool

from kubejudge.scaling import Memory, Observation, PoolLimits, decide

DT = 0.1  # seconds per simulation tick
TARGET = 2  # targetBacklogPerWorker here, listLength for KEDA
MAX_REPLICAS = 50
# The CRD's default scaleDownDelaySeconds (charts/kubejudge/crds/judgecluster.yaml).
OUR_DELAY_S = WorkerPool.model_fields["scale_down_delay_s"].default
MEAN_JUDGE_S = 2.0


# ---------------------------------------------------------------- traces


def burst(rng: random.Random) -> list[float]:
    """200 submissions at once (a contest starts)."""
    return sorted(10 + rng.random() * 0.5 for _ in range(200))


def ramp(rng: random.Random) -> list[float]:
    """Arrivals rising from 0 to 8/s over 5 minutes, then 2 minutes flat."""
    return poisson(rng, lambda t: 8 * min(t / 300, 1.0) if t < 420 else 0.0, until=420)


def day(rng: random.Random) -> list[float]:
    """A day compressed into an hour: quiet night, a morning rise, two peaks, an evening fall."""

    def rate(t: float) -> float:
        phase = 2 * math.pi * t / 3600
        return max(0.0, 3.0 * (1 - math.cos(phase)) / 2 + 1.5 * math.sin(2 * phase) ** 2 - 0.2)

    return poisson(rng, rate, until=3600)


def trickle(rng: random.Random) -> list[float]:
    """One submission every ~20 s for 5 minutes, then nothing (the pool should go idle)."""
    return poisson(rng, lambda t: 0.05 if t < 300 else 0.0, until=300)


def poisson(rng: random.Random, rate: Callable[[float], float], *, until: float) -> list[float]:
    arrivals, t = [], 0.0
    while t < until:
        t += DT
        if rng.random() < rate(t) * DT:
            arrivals.append(t)
    return arrivals


TRACES = {"burst-200": burst, "ramp": ramp, "day": day, "trickle-to-idle": trickle}


# ---------------------------------------------------------------- the pool


@dataclass
class Worker:
    ready_at: float
    ready_since: float | None = None
    job: tuple[float, float] | None = None  # (arrival, judging time)
    done_at: float = 0.0


@dataclass
class Pool:
    """Workers, a FIFO queue and the bookkeeping for the report."""

    startup_s: float
    workers: list[Worker] = field(default_factory=list)
    queue: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    waits: list[float] = field(default_factory=list)
    killed: int = 0
    worker_s: float = 0.0

    @property
    def busy(self) -> int:
        return sum(1 for w in self.workers if w.job is not None)

    @property
    def ready(self) -> int:
        return sum(1 for w in self.workers if w.ready_since is not None)

    def step(self, now: float) -> None:
        for worker in self.workers:
            if worker.ready_since is None and worker.ready_at <= now:
                worker.ready_since = now
            if worker.job is not None and worker.done_at <= now:
                worker.job = None
            if worker.ready_since is not None and worker.job is None and self.queue:
                worker.job = self.queue.popleft()
                worker.done_at = now + worker.job[1]
                self.waits.append(now - worker.job[0])
        self.worker_s += len(self.workers) * DT

    def resize(self, desired: int, now: float, *, victims: Callable[[Worker], tuple]) -> None:
        while len(self.workers) < desired:
            self.workers.append(Worker(ready_at=now + self.startup_s))
        if len(self.workers) > desired:
            self.workers.sort(key=victims)
            for worker in self.workers[: len(self.workers) - desired]:
                if worker.job is not None:  # killed mid-judging: back to the queue's head
                    self.killed += 1
                    self.queue.appendleft(worker.job)
            del self.workers[: len(self.workers) - desired]


def ours_victims(worker: Worker) -> tuple:
    """Not ready first, then idle (deletion cost 0), busy last (deletion cost high)."""
    return (worker.ready_since is not None, worker.job is not None)


def replicaset_victims(worker: Worker) -> tuple:
    """Not ready first, then the most recently ready; busy or not is unknown to it."""
    return (worker.ready_since is not None, -(worker.ready_since or 0.0))


# ---------------------------------------------------------------- the scalers


class Ours:
    def __init__(self) -> None:
        self.limits = PoolLimits(
            min_replicas=0,
            max_replicas=MAX_REPLICAS,
            target_backlog_per_worker=TARGET,
            scale_down_delay_s=OUR_DELAY_S,
        )
        self.memory = Memory()

    def tick(self, pool: Pool, now: float, step: int) -> None:
        if step % round(1.0 / DT):  # poll every second
            return
        busy = pool.busy
        seen = Observation(
            waiting=len(pool.queue), pending=busy, busy=busy, current=len(pool.workers)
        )
        decision = decide(limits=self.limits, seen=seen, memory=self.memory, now=now)
        self.memory = decision.memory
        if decision.changed:
            pool.resize(decision.desired, now, victims=ours_victims)


class KedaHpa:
    POLL_S, SYNC_S, TOLERANCE, WINDOW_S, COOLDOWN_S = 30, 15, 0.1, 300, 300

    def __init__(self, *, poll_phase: int, sync_phase: int) -> None:
        """The phases (in ticks) place KEDA's polls and the HPA's syncs against the trace."""
        self.recommendations: collections.deque[tuple[float, int]] = collections.deque()
        self.last_active = -math.inf
        self.poll_phase, self.sync_phase = poll_phase, sync_phase

    def tick(self, pool: Pool, now: float, step: int) -> None:
        waiting, current = len(pool.queue), len(pool.workers)
        if (step - self.poll_phase) % round(self.POLL_S / DT) == 0:  # KEDA: activation only
            if waiting > 0:
                self.last_active = now
                if current == 0:
                    pool.resize(1, now, victims=replicaset_victims)
            elif current > 0 and now - self.last_active >= self.COOLDOWN_S:
                pool.resize(0, now, victims=replicaset_victims)
                self.recommendations.clear()
        current = len(pool.workers)
        if current == 0 or (step - self.sync_phase) % round(self.SYNC_S / DT):
            return
        ratio = waiting / (TARGET * current)
        wanted = math.ceil(waiting / TARGET) if abs(1 - ratio) > self.TOLERANCE else current
        wanted = min(max(wanted, 1), MAX_REPLICAS)
        self.recommendations.append((now, wanted))
        while self.recommendations[0][0] < now - self.WINDOW_S:
            self.recommendations.popleft()
        if wanted > current:
            desired = min(wanted, max(2 * current, current + 4))
        else:  # scale down to the highest recommendation of the window
            desired = max(r for _, r in self.recommendations)
        if desired != current:
            pool.resize(desired, now, victims=replicaset_victims)


# ---------------------------------------------------------------- one run


def simulate(arrivals: list[float], scaler: Ours | KedaHpa, *, rng: random.Random,
             startup_s: float) -> dict[str, float]:  # fmt: skip
    pool = Pool(startup_s=startup_s)
    jobs = collections.deque((t, rng.expovariate(1 / MEAN_JUDGE_S) + 0.2) for t in arrivals)
    needs: list[int] = []
    asked: list[int] = []
    ready: list[int] = []
    step, now, idle_since = 0, 0.0, None
    while True:
        now = step * DT
        while jobs and jobs[0][0] <= now:
            pool.queue.append(jobs.popleft())
        pool.step(now)
        scaler.tick(pool, now, step)
        in_system = len(pool.queue) + pool.busy
        needs.append(min(math.ceil(in_system / TARGET), MAX_REPLICAS))
        asked.append(len(pool.workers))
        ready.append(pool.ready)
        idle = not jobs and in_system == 0 and not pool.workers
        idle_since = (idle_since if idle_since is not None else now) if idle else None
        step += 1
        if idle_since is not None or now > 24 * 3600:
            break
    return {
        "react_s": worst_lag(needs, asked),
        "ready_s": worst_lag(needs, ready),
        "p95_wait_s": percentile(pool.waits, 95),
        "worker_s": pool.worker_s,
        "killed": pool.killed,
        "done_s": now,
    }


def worst_lag(needs: list[int], have: list[int]) -> float:
    """The longest unbroken stretch with fewer workers than the demand needed."""
    worst = run = 0
    for need, count in zip(needs, have, strict=True):
        run = run + 1 if count < need else 0
        worst = max(worst, run)
    return worst * DT


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


# ---------------------------------------------------------------- the report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="runs per trace (median reported)")
    parser.add_argument("--startup-s", type=float, default=5.0, help="pod start-up delay")
    args = parser.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    for trace, make in TRACES.items():
        runs: dict[str, list[dict[str, float]]] = {"ours": [], "keda": []}
        for seed in range(args.seeds):
            arrivals = make(random.Random(seed))
            phases = random.Random(2000 + seed)  # where KEDA's 30 s and the HPA's 15 s ticks fall
            keda = KedaHpa(
                poll_phase=phases.randrange(round(KedaHpa.POLL_S / DT)),
                sync_phase=phases.randrange(round(KedaHpa.SYNC_S / DT)),
            )
            for name, scaler in (("ours", Ours()), ("keda", keda)):
                rng = random.Random(1000 + seed)  # the same judging times for both
                runs[name].append(simulate(arrivals, scaler, rng=rng, startup_s=args.startup_s))
        results[trace] = {
            name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
            for name, rs in runs.items()
        }
    print_table(results, seeds=args.seeds, startup_s=args.startup_s)


def print_table(results: dict[str, dict[str, dict[str, float]]], *, seeds: int,
                startup_s: float) -> None:  # fmt: skip
    header = (
        f"{'trace':<16} {'scaler':<6} {'react s':>8} {'ready s':>8} {'p95 wait s':>10} "
        f"{'worker-s':>9} {'killed':>6}"
    )
    print(f"autoscale_sim: medians of {seeds} seeds, pod start-up {startup_s:g} s, "
          f"target {TARGET}/worker, max {MAX_REPLICAS}")  # fmt: skip
    print(header)
    print("-" * len(header))
    verdicts = {}
    for trace, by_scaler in results.items():
        for name, r in by_scaler.items():
            print(
                f"{trace:<16} {name:<6} {r['react_s']:>8.1f} {r['ready_s']:>8.1f} "
                f"{r['p95_wait_s']:>10.1f} {r['worker_s']:>9.0f} {r['killed']:>6.0f}"
            )
        ours, keda = by_scaler["ours"], by_scaler["keda"]
        verdicts[trace] = {
            "react_ratio": round(ours["react_s"] / keda["react_s"], 3) if keda["react_s"] else 0.0,
            "react_at_most_tenth": ours["react_s"] <= keda["react_s"] / 10,
            "zero_killed": ours["killed"] == 0,
            "worker_s_not_more": ours["worker_s"] <= keda["worker_s"],
        }
    for trace, verdict in verdicts.items():
        print(f"{trace:<16} target: " + ", ".join(f"{k}={v}" for k, v in verdict.items()))
    print(json.dumps({"bench": "autoscale_sim", "seeds": seeds, "startup_s": startup_s,
                      "results": results, "targets": verdicts}, sort_keys=True))  # fmt: skip


if __name__ == "__main__":
    main()
