"""Prometheus's HTTP query API, as much of it as the dashboard's readers need."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx


class QueryError(RuntimeError):
    """Prometheus refused or failed a query (a bad expression, a many-to-many join, ...)."""


@dataclass(frozen=True, slots=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix seconds, value); NaN and Inf left out

    @property
    def values(self) -> list[float]:
        return [v for _, v in self.points]


class Prometheus:
    def __init__(self, url: str, *, timeout_s: float = 30.0) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def query(self, expr: str, *, at: float) -> list[Series]:
        data = self._get("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        if data["resultType"] != "vector":
            raise QueryError(f"expected an instant vector from {expr!r}, got {data['resultType']}")
        return [_series(item["metric"], [item["value"]]) for item in data["result"]]

    def query_range(self, expr: str, *, start: float, end: float, step_s: float) -> list[Series]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": step_s}
        data = self._get("/api/v1/query_range", params)
        return [_series(item["metric"], item["values"]) for item in data["result"]]

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """Any other API path's `data` (targets, rules, status/config)."""
        return self._get(path, params or {})

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as error:  # unreachable or timed out: callers handle QueryError
            raise QueryError(f"{path}: {error}") from error
        try:
            body = response.json()
        except ValueError as error:
            raise QueryError(f"{path}: HTTP {response.status_code}, not JSON") from error
        if body.get("status") != "success":
            raise QueryError(f"{path} {params.get('query', '')!r}: {body.get('error', body)}")
        return body["data"]


def _series(metric: dict[str, str], values: list[list[Any]]) -> Series:
    points = [(float(t), float(v)) for t, v in values]
    return Series(labels=metric, points=[(t, v) for t, v in points if math.isfinite(v)])
