"""Api-tier fixtures: the real app (lifespan and all) over real Redis and PostgreSQL, driven
in-process through httpx's ASGI transport, or as a real uvicorn process (`api_url`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from kubejudge_api.app import create_app
from kubejudge_api.settings import ApiSettings
from kubejudge_dev import localservices
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from support.processes import spawn_role, stop, wait_ready

from kubejudge import auth
from kubejudge.settings import Settings

ApiFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def api_factory(settings: Settings, redis: Redis, engine: AsyncEngine) -> ApiFactory:
    """`async with api_factory(max_queue_size=2) as client:` — an app with these settings
    (`dev_tokens=True` as `kubejudge api --dev-tokens`). Depends on `redis` and `engine` so
    each test starts from an empty Redis and database."""

    @contextlib.asynccontextmanager
    async def make(
        *, dev_tokens: bool = False, **overrides: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        values = dict(
            redis_url=settings.redis_url,
            database_url=settings.database_url,
            jwt_secret=settings.jwt_secret,
            migrate_on_start=False,
        )
        values.update(overrides)
        app = create_app(ApiSettings(**values), dev_tokens=dev_tokens)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                client.app = app  # type: ignore[attr-defined]
                yield client

    return make


@pytest.fixture
async def api(api_factory: ApiFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with api_factory() as client:
        yield client


@pytest.fixture
def bearer(settings: Settings) -> Callable[..., dict[str, str]]:
    def headers(user_id: str = "alice", *, admin: bool = False) -> dict[str, str]:
        token = auth.issue(secret=settings.jwt_secret, user_id=user_id, admin=admin)
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture(scope="session")
def api_url(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `kubejudge api` process (uvicorn) over the test Redis and PostgreSQL."""
    port = localservices.free_port()
    env = dict(
        os.environ,
        KUBEJUDGE_REDIS_URL=settings.redis_url,
        KUBEJUDGE_DATABASE_URL=settings.database_url,
        KUBEJUDGE_JWT_SECRET=settings.jwt_secret,
        KUBEJUDGE_MIGRATE_ON_START="false",
        KUBEJUDGE_WAIT_TIMEOUT_S="0.2",
        KUBEJUDGE_LOG_LEVEL="WARNING",
    )
    logs = tmp_path_factory.mktemp("api")
    process = spawn_role(
        "api", "--host", "127.0.0.1", "--port", str(port), "--dev-tokens", env=env,
        log=logs / "api.log",
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(f"{url}/readyz", [process], logs, timeout_s=30)
        yield url
    finally:
        stop([process], timeout_s=15)
