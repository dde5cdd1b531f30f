"""Fixtures every tier may use: a real Redis and a real PostgreSQL on loopback, and a real
Kubernetes node (tests/node/) for the tiers that run pods.

They start once per test session, only when a test asks for them, and are torn down at the
end. Unit tests ask for neither and need no servers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from kubejudge_dev import localservices
from node import fixture as nodefixture  # tests/ is on sys.path, as for support
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import images as support_images

from kubejudge.db.engine import create_engine, migrate
from kubejudge.db.models import Base
from kubejudge.settings import Settings

TESTS = Path(__file__).resolve().parent
# The tiers that look inside the images or run them in pods.
IMAGE_TIERS = (TESTS / "images", TESTS / "e2e")
# The tiers that run pods on the real node (tests/cluster's own `cluster` fixture is another).
NODE_TIERS = (TESTS / "node_smoke", TESTS / "e2e")


def pytest_collection_finish(session: pytest.Session) -> None:
    # Cold builds of the node and the images take minutes: here they count against no test's
    # timeout, and only for the tiers selected. Their fixtures then find them all cached.
    if session.config.option.collectonly:
        return
    tiers = {Path(str(item.fspath)).parent for item in session.items}
    if any(tier in tiers for tier in IMAGE_TIERS):
        support_images.make_images(cluster_dir=None)
    if os.environ.get("KUBEJUDGE_CLUSTER_DIR"):
        return
    if any(tier in tiers for tier in NODE_TIERS):
        nodefixture.build_binaries()


@pytest.fixture(scope="session")
def cluster() -> Iterator[nodefixture.Cluster]:
    """The session's one real node (only one can run on a machine), shared by every tier that
    runs pods. ``KUBEJUDGE_CLUSTER_DIR=.cluster`` uses the one ``make cluster-up`` started."""
    with nodefixture.cluster_session() as running:
        yield running


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    # Not under pytest's 0700 tmp dir: as root PostgreSQL runs as `postgres` and must reach it.
    path = Path(tempfile.mkdtemp(prefix="kubejudge-tests-"))
    os.chmod(path, 0o755)  # noqa: S103
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(services_dir: Path) -> Iterator[localservices.LocalServer]:
    server = localservices.start_redis(services_dir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server(services_dir: Path) -> Iterator[localservices.LocalServer]:
    server = localservices.start_postgres(services_dir / "postgres")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(
    redis_server: localservices.LocalServer, postgres_server: localservices.LocalServer
) -> Settings:
    """Settings pointing at the test servers, with the schema migrated."""
    configured = Settings(
        redis_url=redis_server.url,
        database_url=postgres_server.url,
        jwt_secret="test-secret-0123456789abcdef-0123456789",
    )
    migrate(configured)
    return configured


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis_url)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """A clean database for each test (every table emptied, schema kept)."""
    engine = create_engine(settings, pool_size=5)
    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine
    await engine.dispose()
