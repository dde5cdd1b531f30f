"""A JudgeCluster's status conditions, each keeping the time it last changed status."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Conditions:
    """Conditions by type, each keeping the time it last changed status."""

    items: dict[str, dict[str, str]] = field(default_factory=dict)

    def set(self, kind: str, ok: bool, reason: str, message: str) -> None:
        status = "True" if ok else "False"
        old = self.items.get(kind)
        since = old["lastTransitionTime"] if old and old["status"] == status else utc_now()
        self.items[kind] = {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": since,
        }

    def ok(self, kind: str) -> bool:
        return self.items.get(kind, {}).get("status") == "True"

    def listed(self) -> list[dict[str, str]]:
        return [self.items[kind] for kind in sorted(self.items)]
