"""The load to send: when each submission goes out, as offsets from the start (open loop: the
schedule never waits for earlier submissions to finish)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LoadPlan:
    mode: str  # "burst" or "open-loop"
    offsets_s: tuple[float, ...]
    users: int
    language_id: int
    work_s: float
    timeout_s: float  # how long to wait for verdicts once the last submission is sent
    rate_per_s: float | None = None

    @classmethod
    def burst(
        cls, *, count: int, users: int, language_id: int, work_s: float, timeout_s: float
    ) -> LoadPlan:
        return cls(
            mode="burst",
            offsets_s=(0.0,) * count,
            users=users,
            language_id=language_id,
            work_s=work_s,
            timeout_s=timeout_s,
        )

    @classmethod
    def open_loop(
        cls,
        *,
        rate_per_s: float,
        duration_s: float,
        users: int,
        language_id: int,
        work_s: float,
        timeout_s: float,
    ) -> LoadPlan:
        count = max(1, int(rate_per_s * duration_s))
        return cls(
            mode="open-loop",
            offsets_s=tuple(i / rate_per_s for i in range(count)),
            users=users,
            language_id=language_id,
            work_s=work_s,
            timeout_s=timeout_s,
            rate_per_s=rate_per_s,
        )

    def user_of(self, index: int) -> str:
        """Submissions go round-robin over the users, each with its own socket."""
        return f"loadtest-{index % self.users}"
