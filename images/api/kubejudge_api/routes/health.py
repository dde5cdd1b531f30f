"""Probes, metrics and the demo page: never behind X-Auth-Token."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from kubejudge import queue
from kubejudge_api.deps import ServicesDep

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is serving."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """Ready only while both PostgreSQL and Redis answer (within a second each)."""
    checks = {"postgres": await _postgres(services), "redis": await _redis(services)}
    ready = all(checks.values())
    body = {name: "ok" if ok else "unavailable" for name, ok in checks.items()}
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/metrics")
async def metrics(services: ServicesDep) -> Response:
    for pool in services.settings.pools:
        try:
            backlog = await queue.backlog(services.redis, pool)
        except (RedisError, OSError):
            continue
        services.metrics.backlog.labels(pool).set(backlog.total)
    return Response(generate_latest(services.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC / "index.html")


async def _postgres(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(1):
            async with services.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError):
        return False
    return True


async def _redis(services: ServicesDep) -> bool:
    try:
        async with asyncio.timeout(1):
            await services.redis.ping()
    except (RedisError, OSError, TimeoutError):
        return False
    return True
