"""Prometheus metrics of one api process, in its own registry (tests build many apps)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kubejudge_api_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "kubejudge_api_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
            registry=self.registry,
        )
        self.submissions = Counter(
            "kubejudge_api_submissions_total",
            "Submissions accepted, or rejected with the reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.backlog = Gauge(
            "kubejudge_queue_backlog",
            "Submissions waiting or being judged, per worker pool (sampled at scrape).",
            ["pool"],
            registry=self.registry,
        )

    def accepted(self, n: int = 1) -> None:
        self.submissions.labels("accepted", "").inc(n)

    def rejected(self, reason: str, n: int = 1) -> None:
        self.submissions.labels("rejected", reason).inc(n)


class MetricsMiddleware:
    """Counts and times every request under its route template (`/submissions/{token}`),
    so metric cardinality stays bounded whatever paths clients send."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            route = _template(scope)
            self.metrics.requests.labels(route, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)


def _template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
