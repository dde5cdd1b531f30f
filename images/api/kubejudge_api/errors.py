"""Errors as Judge0 shapes them: `{"error": "..."}` for request-level problems and
`{"field": ["message"]}` for validation (422). Handlers turn every expected failure into a
clear 4xx/503 so that no input produces a 500.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Answer with `status` and exactly `body` (and `headers`)."""

    def __init__(
        self, status: int, body: dict[str, Any] | list[Any], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body
        self.headers = headers


def error(status: int, message: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, {"error": message}, headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields: dict[str, list[str]] = {}
        for problem in exc.errors():
            location = [str(part) for part in problem.get("loc", ()) if part != "body"]
            fields.setdefault(".".join(location) or "body", []).append(problem["msg"])
        return JSONResponse(fields, status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(SQLAlchemyError)
    async def database_down(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database error: %s", exc)
        return JSONResponse({"error": "database unavailable, retry later"}, status_code=503)

    @app.exception_handler(asyncpg.PostgresError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def asyncpg_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database error: %s", exc)
        return JSONResponse({"error": "database unavailable, retry later"}, status_code=503)

    @app.exception_handler(RedisError)
    async def redis_down(_: Request, exc: RedisError) -> JSONResponse:
        log.warning("redis error: %s", exc)
        return JSONResponse({"error": "redis unavailable, retry later"}, status_code=503)

    @app.exception_handler(OSError)
    async def unreachable(_: Request, exc: OSError) -> JSONResponse:
        log.warning("connection error: %s", exc)
        return JSONResponse({"error": "a backing service is unavailable"}, status_code=503)
