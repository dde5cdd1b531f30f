"""Prometheus metrics of one api process, in its own registry (tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


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
