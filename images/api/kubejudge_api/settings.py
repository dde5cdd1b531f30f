"""What only the api reads, on top of the shared `Settings` (same `KUBEJUDGE_*` variables)."""

from __future__ import annotations

from pydantic import Field, IPvAnyNetwork

from kubejudge.settings import Settings


class ApiSettings(Settings):
    # Judge0's MAX_QUEUE_SIZE is 100 because its workers are fixed; ours autoscale from the
    # backlog, so the default only stops a runaway client from filling Redis. Counts waiting
    # plus in-flight entries of the submission's pool.
    max_queue_size: int = Field(default=10_000, ge=1)
    max_submission_batch_size: int = Field(default=20, ge=1, le=1000)
    # Request bodies above this get 413 before they are parsed (a batch of 20 fits easily).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    enable_wait_result: bool = True
    # `wait=true` returns whatever state the submission is in after this long (still 201).
    wait_timeout_s: float = Field(default=60.0, gt=0)
    # Judge0's X-Auth-User for GET /submissions (all submissions); unset = nobody.
    authz_token: str | None = None
    # Per JWT user: at most this many submissions per window (429 + Retry-After beyond it).
    rate_limit_submissions: int = Field(default=120, ge=1)
    # Per client address, for callers without a JWT while KUBEJUDGE_AUTH_TOKEN is unset (with
    # it, only the operator's own clients get that far); an IPv6 client counts per /64. 0
    # turns it off.
    rate_limit_anonymous_submissions: int = Field(default=120, ge=0)
    rate_limit_window_s: int = Field(default=60, ge=1)
    # Proxies (addresses or CIDRs, as JSON: ["10.0.0.0/8"]) whose X-Forwarded-For names the
    # client, e.g. the ingress controller's pods. Empty: the peer is the client and the header
    # is ignored, since anyone can send it.
    trusted_proxies: list[IPvAnyNetwork] = Field(default_factory=list)
    # The reconciler re-enqueues submissions still unfinished this long after creation
    # whose queue marker is gone, checking every `reconcile_interval_s`.
    reconcile_after_s: float = Field(default=30.0, gt=0)
    reconcile_interval_s: float = Field(default=5.0, gt=0)
    problem_cache_ttl_s: int = Field(default=300, ge=1)
    # Run migrations when the api starts (`kubejudge api --migrate` runs them and exits).
    migrate_on_start: bool = True
