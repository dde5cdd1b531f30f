"""The async engine and schema migrations."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from kubejudge.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


def create_engine(settings: Settings, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


async def create_pool(
    settings: Settings,
    *,
    min_size: int,
    max_size: int,
    init: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """Raw asyncpg connections, for the hot paths that send statements compiled once (the api's
    accept, the worker's claims and verdict writes)."""
    dsn = settings.sqlalchemy_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=init, reset=_keep_session
    )


async def _keep_session(_: asyncpg.Connection) -> None:
    """Nothing on these connections sets session state, so one goes back to the pool without
    asyncpg's reset round trip."""


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", settings.sqlalchemy_url)
    return config


def migrate(settings: Settings) -> None:
    """Bring the schema to the newest revision (safe to run on every start)."""
    command.upgrade(alembic_config(settings), "head")
