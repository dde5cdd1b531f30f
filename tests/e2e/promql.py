"""Just enough of PromQL's shape to check an expression against real series: the vector
selectors it reads and the labels it groups or joins on."""

from __future__ import annotations

import re

# A metric name and its optional {matchers}; names ours or Prometheus's own `up`. Functions and
# keywords (sum, rate, by, ...) are never followed by "{" and are not metric names we use.
_SELECTOR = re.compile(r"\b((?:kubejudge_\w+)|up)\b(\{[^}]*\})?(?!\s*\()")
_GROUPING = re.compile(r"\b(?:by|on|ignoring|without)\s*\(([^)]*)\)")


def selectors(expr: str) -> list[str]:
    """Each vector selector as written (`name{matchers}`), in order, without duplicates."""
    seen: dict[str, None] = {}
    for name, matchers in _SELECTOR.findall(expr):
        seen[name + (matchers or "")] = None
    return list(seen)


def grouping_labels(expr: str) -> set[str]:
    """Every label named in a by/on/ignoring/without clause."""
    return {
        label.strip()
        for group in _GROUPING.findall(expr)
        for label in group.split(",")
        if label.strip()
    }
