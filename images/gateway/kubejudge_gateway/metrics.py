"""The gateway's Prometheus metrics, served at /metrics on the WebSocket port.

Each `GatewayMetrics` has its own registry, so two gateways in one process (tests) don't clash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Delivery latency buckets (seconds): the target is p99 < 50 ms, so resolve well below it.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge(
            "kubejudge_gateway_connections", "Open WebSocket connections", registry=r
        )
        self.subscribed_users = Gauge(
            "kubejudge_gateway_subscribed_users",
            "Users whose channel this gateway is subscribed to",
            registry=r,
        )
        self.events_delivered = Counter(
            "kubejudge_gateway_events_delivered",
            "Events written to sockets (one per socket)",
            ["mode"],  # live or replay
            registry=r,
        )
        self.delivery_latency = Histogram(
            "kubejudge_gateway_delivery_latency_seconds",
            "From the event's creation to its write to a socket, for live events",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "kubejudge_gateway_auth_failures", "Sockets closed 4401 for a bad token", registry=r
        )
        self.slow_consumer_closes = Counter(
            "kubejudge_gateway_slow_consumer_closes",
            "Sockets closed 1013 because they did not read fast enough",
            registry=r,
        )
        self.resumes = Counter(
            "kubejudge_gateway_resumes", "Connections that resumed from a last event id", registry=r
        )
        self.resyncs = Counter(
            "kubejudge_gateway_resyncs",
            "Resumes the history could not cover (told to refetch over HTTP)",
            registry=r,
        )
        self.client_errors = Counter(
            "kubejudge_gateway_client_errors",
            "Client messages refused with an `error` message",
            registry=r,
        )
        self.feed_losses = Counter(
            "kubejudge_gateway_feed_losses",
            "Times the Redis pub/sub connection was lost (local sockets closed 1001)",
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
