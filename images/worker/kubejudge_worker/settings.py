"""What only the worker reads, on top of the shared `Settings` (same `KUBEJUDGE_*` variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from kubejudge.settings import DEFAULT_POOL, Settings
from kubejudge.wellknown import SANDBOX_ROOT, WORKER_METRICS_PORT
from kubejudge_worker.sandbox.limits import Limits


class WorkerSettings(Settings):
    pool: str = DEFAULT_POOL
    concurrency: int = Field(default=1, ge=1, le=64)
    # Liveness: the heartbeat key lives this long unless refreshed (every third of it). An
    # entry is taken from a worker only once its heartbeat has expired, never for being slow.
    heartbeat_ttl_s: float = Field(default=10.0, gt=0)
    reclaim_interval_s: float = Field(default=2.0, gt=0)
    # A submission whose worker died this many times ends as Internal Error (dead-lettered).
    max_attempts: int = Field(default=3, ge=1)
    # On SIGTERM, running submissions get this long to finish before they are released.
    drain_timeout_s: float = Field(default=25.0, ge=0)
    # /metrics, /healthz, /readyz; 0 turns the HTTP port off (tests that run many workers).
    metrics_port: int = Field(default=WORKER_METRICS_PORT, ge=0, le=65535)
    sandbox_mode: Literal["bwrap", "rlimit"] = "bwrap"
    # rlimit mode cannot hide the host's files or network from a program: opt in explicitly.
    sandbox_allow_rlimit_mode: bool = False
    sandbox_root: Path = Path(SANDBOX_ROOT)
    sandbox_use_cgroups: bool = True
    # Compilers get fixed limits (Judge0 does the same); submissions choose only run limits.
    compile_cpu_time_s: float = Field(default=15.0, gt=0)
    compile_wall_time_s: float = Field(default=30.0, gt=0)
    compile_memory_kb: int = Field(default=1_024_000, ge=65_536)
    compile_max_processes: int = Field(default=128, ge=1)
    compile_output_bytes: int = Field(default=64 * 1024, ge=1024)

    @property
    def compile_limits(self) -> Limits:
        """What every compilation runs under, whatever the submission asked for."""
        return Limits(
            cpu_time_s=self.compile_cpu_time_s,
            cpu_extra_time_s=0,
            wall_time_s=self.compile_wall_time_s,
            memory_kb=self.compile_memory_kb,
            stack_kb=64_000,
            max_processes=self.compile_max_processes,
            max_file_size_kb=64 * 1024,
            output_limit_bytes=self.compile_output_bytes,
        )
