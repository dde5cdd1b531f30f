"""THE scaling policy of a worker pool: how many workers it should have now.

Pure: no clock, no Redis, no Kubernetes. The operator's autoscaler and `kubejudge dev`'s local
pool both feed it one `Observation` per poll and act on the `Decision` it returns, carrying
`Memory` from one poll to the next.

The rules (DESIGN.md "Autoscaling"), and why they beat KEDA + HPA defaults:

- need = ceil((waiting + pending) / target_backlog_per_worker). Pending entries are being judged,
  so in-flight work keeps its workers; KEDA's list and lag metrics count only waiting items.
- Scale up at once, straight to the need (capped by max): no doubling ramp, no tolerance band.
- Scale down only after the pool has wanted fewer for `scale_down_delay_s` without a break, and
  then only to the highest need of the last `scale_down_delay_s` (HPA's stabilisation window,
  but busy-aware and with a short delay), so a load that comes and goes does not flap.
- Never scale down below the busy workers: busy pods are the last to go (the operator also marks
  them with a pod-deletion cost), so a scale-down only ever removes idle workers.
- min 0 scales to zero once idle for the delay, and wakes in the first poll that sees work.
- A max lowered below the current size applies without waiting, still never below busy.
- No scale-down in a poll that just changed the busy pods' deletion costs: the ReplicaSet picks
  the pods to remove from its own cache, so the new costs get one poll to reach it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class PoolLimits:
    min_replicas: int
    max_replicas: int
    target_backlog_per_worker: int
    scale_down_delay_s: float

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(
                f"expected 0 <= minReplicas <= maxReplicas, "
                f"got {self.min_replicas} and {self.max_replicas}"
            )
        if self.target_backlog_per_worker < 1:
            raise ValueError(
                f"expected targetBacklogPerWorker >= 1, got {self.target_backlog_per_worker}"
            )
        if self.scale_down_delay_s < 0:
            raise ValueError(f"expected scaleDownDelaySeconds >= 0, got {self.scale_down_delay_s}")


@dataclass(frozen=True, slots=True)
class Observation:
    waiting: int  # queued, not yet delivered to a worker
    pending: int  # delivered and not yet acknowledged: being judged
    busy: int  # workers judging at least one submission
    current: int  # replicas the pool has now (asked for, ready or not)
    # Busy pods' deletion costs were changed this poll: the ReplicaSet may not see them yet.
    marking: bool = False

    @property
    def backlog(self) -> int:
        return self.waiting + self.pending


@dataclass(frozen=True, slots=True)
class Memory:
    """What the policy remembers between polls: since when the pool has wanted fewer workers
    (monotonic seconds), and the needs of the last delay as a max-queue: (time, need) pairs
    with strictly falling needs, so the window's highest need is the first."""

    below_since: float | None = None
    recent: tuple[tuple[float, int], ...] = ()

    def remember(self, *, now: float, need: int, window_s: float) -> Memory:
        kept = [entry for entry in self.recent if entry[1] > need and entry[0] >= now - window_s]
        since = self.below_since if self.below_since is not None else now
        return Memory(below_since=since, recent=(*kept, (now, need)))

    @property
    def peak(self) -> int:
        return self.recent[0][1] if self.recent else 0


@dataclass(frozen=True, slots=True)
class Decision:
    current: int
    desired: int
    need: int  # what the backlog asks for, within min and max
    reason: str
    memory: Memory = field(default_factory=Memory)

    @classmethod
    def hold(cls, current: int, *, need: int, reason: str, memory: Memory) -> Decision:
        """Keep the size; `reason` says why, after "hold N: "."""
        return cls(
            current=current,
            desired=current,
            need=need,
            reason=f"hold {current}: {reason}",
            memory=memory,
        )

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def need_for(limits: PoolLimits, backlog: int) -> int:
    """Workers the backlog asks for, within [min, max]."""
    raw = math.ceil(backlog / limits.target_backlog_per_worker)
    return min(max(raw, limits.min_replicas), limits.max_replicas)


def wants_fewer(limits: PoolLimits, seen: Observation) -> bool:
    """Whether a scale-down may come, now or after the delay: the time to mark busy pods."""
    return need_for(limits, seen.backlog) < seen.current


def decide(*, limits: PoolLimits, seen: Observation, memory: Memory, now: float) -> Decision:
    """The size the pool should have now; `now` is a monotonic time in seconds."""
    decision = _size(limits=limits, seen=seen, memory=memory, now=now)
    if seen.marking and decision.desired < seen.current:
        # Shrink on the next poll; `memory` still says since when the pool wanted fewer.
        reason = "marking busy pods before scaling down"
        return Decision.hold(seen.current, need=decision.need, reason=reason, memory=memory)
    return decision


def _size(*, limits: PoolLimits, seen: Observation, memory: Memory, now: float) -> Decision:
    need = need_for(limits, seen.backlog)
    current = seen.current
    load = f"backlog {seen.backlog} ({seen.waiting} waiting, {seen.pending} in flight)"
    floor = min(seen.busy, current)  # scaling below this would stop busy workers

    if need > current:
        return Decision(
            current=current,
            desired=need,
            need=need,
            reason=f"scale up {current} -> {need}: {load}, {limits.target_backlog_per_worker}"
            f" per worker{_capped(limits, seen.backlog)}",
        )
    if need == current:
        return Decision(current=current, desired=current, need=need, reason=f"steady: {load}")

    if current > limits.max_replicas:
        desired = max(limits.max_replicas, floor)
        verb = f"scale down {current} -> {desired}" if desired < current else f"hold {current}"
        return Decision(
            current=current,
            desired=desired,
            need=need,
            reason=f"{verb}: above max {limits.max_replicas}"
            f"{_busy_note(desired, limits.max_replicas, seen.busy)}",
        )

    held = memory.remember(now=now, need=need, window_s=limits.scale_down_delay_s)
    waited = now - held.below_since if held.below_since is not None else 0.0
    if waited < limits.scale_down_delay_s:
        left = limits.scale_down_delay_s - waited
        reason = f"{load} wants {held.peak}, scale down in {left:.0f} s"
        return Decision.hold(current, need=need, reason=reason, memory=held)
    # The highest need of the last delay: a pool shrinks only to what it recently needed.
    desired = max(held.peak, floor)
    if desired == current:
        reason = f"{load}, {seen.busy} busy, wanted {held.peak} lately"
        return Decision.hold(current, need=need, reason=reason, memory=held)
    return Decision(
        current=current,
        desired=desired,
        need=need,
        reason=f"scale down {current} -> {desired}: {load}, below {current} for"
        f" {waited:.0f} s{_busy_note(desired, held.peak, seen.busy)}",
        memory=held,
    )


def _capped(limits: PoolLimits, backlog: int) -> str:
    raw = math.ceil(backlog / limits.target_backlog_per_worker)
    return f", capped at max {limits.max_replicas}" if raw > limits.max_replicas else ""


def _busy_note(desired: int, wanted: int, busy: int) -> str:
    return f", keeping {busy} busy" if desired > wanted else ""
