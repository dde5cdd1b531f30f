"""`kubejudge dev`: the whole judge on this machine.

Starts a throwaway Redis and PostgreSQL in `.kubejudge/` unless KUBEJUDGE_REDIS_URL /
KUBEJUDGE_DATABASE_URL are set, migrates, then supervises one child process per role and
prints the URLs. Ctrl-C (or any child dying) stops everything.

Adding a role is a few lines: write a function that takes the `DevContext` and returns a
`Child` (or None to skip), and append it to `CHILDREN`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubejudge_api.settings import ApiSettings
from redis.asyncio import Redis

from kubejudge.db.engine import create_engine, migrate
from kubejudge.settings import Settings
from kubejudge.wellknown import API_PORT, GATEWAY_PORT
from kubejudge_dev import localservices, seed

STATE_DIR = Path(".kubejudge")


@dataclass
class DevContext:
    env: dict[str, str]  # the environment every child gets (KUBEJUDGE_* URLs and switches)
    host: str
    api_port: int
    gateway_port: int = GATEWAY_PORT


@dataclass
class Child:
    name: str
    argv: list[str]
    url: str | None = None  # printed when everything is up
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None


def _role(name: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "kubejudge.cli", name, *args]


def api_child(context: DevContext) -> Child | None:
    return Child(
        name="api",
        argv=_role("api", "--host", context.host, "--port", str(context.api_port), "--dev-tokens"),
        url=f"http://{context.host}:{context.api_port}/ (docs at /docs)",
    )


def gateway_child(context: DevContext) -> Child | None:
    page = f"http://{context.host}:{context.api_port}/"
    if context.gateway_port != GATEWAY_PORT:  # the page assumes it unless told otherwise
        page += f"?gateway=ws://{context.host}:{context.gateway_port}/ws"
    return Child(
        name="gateway",
        argv=_role("gateway", "--host", context.host, "--port", str(context.gateway_port)),
        url=f"ws://{context.host}:{context.gateway_port}/ws; the live page: {page}",
    )


def workers_child(context: DevContext) -> Child | None:
    """Every pool's local workers, autoscaled by the operator's policy (kubejudge_dev.localpool)."""
    pools = [arg for name in Settings().pools for arg in ("--pool", name)]
    argv = [
        sys.executable,
        "-m",
        "kubejudge_dev.localpool",
        *pools,
        "--worker-arg=--metrics-port=0",
    ]
    return Child(name="workers", argv=argv, url=f"autoscaled local workers for {pools[1::2]}")


CHILDREN: list[Callable[[DevContext], Child | None]] = [api_child, gateway_child, workers_child]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--api-port", type=int, default=API_PORT)
    parser.add_argument("--gateway-port", type=int, default=GATEWAY_PORT)
    parser.add_argument(
        "--state-dir", type=Path, default=STATE_DIR, help="where local Redis/PostgreSQL keep data"
    )


def run(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    servers: list[localservices.LocalServer] = []
    try:
        servers = _start_services(env, args.state_dir.resolve())
        migrate(Settings(**_urls(env)))
        env["KUBEJUDGE_MIGRATE_ON_START"] = "false"  # done once above
        seeded = asyncio.run(_seed(ApiSettings(**_urls(env))))
        if seeded:
            print(f"seeded {len(seeded)} problems to solve: {', '.join(seeded)}", flush=True)
        context = DevContext(
            env=env, host=args.host, api_port=args.api_port, gateway_port=args.gateway_port
        )
        children = [child for make in CHILDREN if (child := make(context)) is not None]
        return _supervise(children, env, loadtest_command(context))
    finally:
        for server in reversed(servers):
            server.stop()


async def _seed(settings: ApiSettings) -> list[str]:
    engine = create_engine(settings, pool_size=1)
    redis = Redis.from_url(settings.redis_url)
    try:
        return await seed.seed_if_empty(engine, redis, ttl_s=settings.problem_cache_ttl_s)
    finally:
        await redis.aclose()
        await engine.dispose()


def _urls(env: dict[str, str]) -> dict[str, str]:
    return {
        "redis_url": env["KUBEJUDGE_REDIS_URL"],
        "database_url": env["KUBEJUDGE_DATABASE_URL"],
    }


def _start_services(env: dict[str, str], state_dir: Path) -> list[localservices.LocalServer]:
    """Local Redis/PostgreSQL for whichever URL is unset. As root PostgreSQL runs as
    `postgres`, which must be able to traverse the state folder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o755)
    servers = []
    if not env.get("KUBEJUDGE_REDIS_URL"):
        servers.append(localservices.start_redis(state_dir / "redis"))
        env["KUBEJUDGE_REDIS_URL"] = servers[-1].url
    if not env.get("KUBEJUDGE_DATABASE_URL"):
        servers.append(localservices.start_postgres(state_dir / "postgres"))
        env["KUBEJUDGE_DATABASE_URL"] = servers[-1].url
    return servers


def loadtest_command(context: DevContext) -> str:
    """The burst to try against this demo (`.venv/bin/` as `make demo` installs it)."""
    return (
        f".venv/bin/kubejudge loadtest --burst 200 --work-s 0.5 --auth dev-endpoint"
        f" --api http://{context.host}:{context.api_port}"
        f" --gateway ws://{context.host}:{context.gateway_port}"
        f" --redis-url {context.env['KUBEJUDGE_REDIS_URL']}"
    )


def _supervise(children: list[Child], env: dict[str, str], loadtest: str) -> int:
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for child in children:
            child.process = subprocess.Popen(child.argv, env={**env, **child.env})
        print(f"redis:    {env['KUBEJUDGE_REDIS_URL']}", flush=True)
        print(f"postgres: {env['KUBEJUDGE_DATABASE_URL']}", flush=True)
        for child in children:
            if child.url:
                print(f"{child.name + ':':9} {child.url}", flush=True)
        if loadtest:
            print(f"watch the pool scale on the page: {loadtest}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for child in children:
                assert child.process is not None
                if child.process.poll() is not None:
                    print(f"{child.name} exited with {child.process.returncode}", flush=True)
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(children)


def _stop(children: list[Child]) -> None:
    for child in reversed(children):
        if child.process is not None and child.process.poll() is None:
            child.process.terminate()
    for child in reversed(children):
        if child.process is None:
            continue
        try:
            child.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
