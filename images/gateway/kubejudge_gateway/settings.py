"""What only the gateway reads, on top of the shared `Settings` (same `KUBEJUDGE_*` variables)."""

from __future__ import annotations

from pydantic import Field

from kubejudge.settings import Settings
from kubejudge.wellknown import GATEWAY_PORT


class GatewaySettings(Settings):
    gateway_host: str = "0.0.0.0"  # noqa: S104 - a pod's port must be reachable from its Service
    gateway_port: int = Field(default=GATEWAY_PORT, ge=0, le=65535)
    # Origins (scheme://host[:port]) whose pages may open sockets, e.g. the api's public URL.
    # Empty (the default) admits only pages served from the gateway's own host name, on any
    # port: the dev page at the api's port works and a foreign site cannot hijack a session.
    # Clients that send no Origin (not a browser, so no ambient credentials) are always let in.
    gateway_allowed_origins: list[str] = Field(default_factory=list)
    # A socket whose unsent bytes pass this is a slow consumer and is closed with 1013.
    gateway_send_buffer_bytes: int = Field(default=256 * 1024, ge=4096)
    # Live events held for a socket while its missed history is still being sent.
    gateway_replay_hold_events: int = Field(default=1000, ge=10)
    # A resume that would replay more than this many events gets `resync` instead.
    gateway_replay_limit: int = Field(default=1000, ge=1)
    # Client -> server messages are tiny (`{"type":"ping"}`); anything larger closes with 1009.
    gateway_max_message_bytes: int = Field(default=4096, ge=64)
    gateway_ping_interval_s: float = Field(default=20.0, gt=0)
    gateway_ping_timeout_s: float = Field(default=20.0, gt=0)
    # One user's open sockets on one gateway; more are closed with 1008 (a valid token must
    # not be enough to exhaust the gateway's memory).
    gateway_max_sockets_per_user: int = Field(default=50, ge=1)
    # On SIGTERM, /readyz answers 503 this long before sockets are closed, so a load balancer
    # stops sending new connections first (Kubernetes: well under terminationGracePeriod).
    gateway_shutdown_delay_s: float = Field(default=0.0, ge=0)
    # Connections to Redis for history reads, shared by every socket of the process.
    gateway_history_pool_size: int = Field(default=8, ge=1)
    # How often the pools' view (backlog, workers) is read from Redis while sockets are open.
    gateway_pool_view_interval_s: float = Field(default=1.0, gt=0)
