"""The api's FastAPI application: `create_app(settings)` wires routes, errors, middleware and
the lifespan that owns the database engine, Redis, the verdict subscription and the reconciler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from kubejudge.db.engine import migrate
from kubejudge_api import errors
from kubejudge_api.judge0_info import KUBEJUDGE_VERSION
from kubejudge_api.metrics import ApiMetrics
from kubejudge_api.middleware.authtoken import AuthTokenMiddleware
from kubejudge_api.middleware.bodylimit import BodyLimitMiddleware
from kubejudge_api.middleware.requestmetrics import MetricsMiddleware
from kubejudge_api.routes import health, info, problems, submissions, users
from kubejudge_api.services import Services
from kubejudge_api.settings import ApiSettings

log = logging.getLogger(__name__)

DESCRIPTION = """A Judge0 CE 1.13.1 compatible judge API (existing Judge0 clients work
unchanged), plus problems with many tests, bearer-JWT users, idempotency keys and rate limits.

Where we differ from Judge0, on purpose:

- `callback_url`, `enable_network`, `additional_files` and the per-process limit switches are
  refused with a 422 in Judge0's shape (callbacks are an SSRF vector from the workers);
  `/config_info` says so.
- `wait=true` waits on the verdict event, at most `KUBEJUDGE_WAIT_TIMEOUT_S` (60 s), then
  answers 201 with the submission as it is (status 1 or 2).
- `max_queue_size` defaults to 10,000 (Judge0: 100), counting waiting and in-flight entries of
  the submission's worker pool, because our workers autoscale from that backlog.
- `GET /submissions` lists everything with a valid `X-Auth-User` (KUBEJUDGE_AUTHZ_TOKEN), and
  the caller's own submissions with a bearer JWT; `GET /users/me/submissions` is the same.
- Extra fields (`problem_id`, `tests`, `memory_limit_exceeded`) appear when named in `fields`,
  and by default on problem submissions; never in `*`, which the official SDK reads strictly.
- `Idempotency-Key` needs a bearer JWT (keys are per user) and applies to single submissions;
  the same request again answers with the first submission, a different one with 422.
- On a hidden test of a problem only the verdict comes back: no output, exit code, signal,
  message, time or memory (the program chooses them, so they would carry the input out).
- Rate limits apply per JWT user, and while X-Auth-Token is off per client address to callers
  without a JWT (`KUBEJUDGE_RATE_LIMIT_ANONYMOUS_SUBMISSIONS`, 0 for none; X-Forwarded-For
  counts only from `KUBEJUDGE_TRUSTED_PROXIES`): 429 with `Retry-After`.
"""


def create_app(settings: ApiSettings, *, dev_tokens: bool = False) -> FastAPI:
    """The api. `dev_tokens` serves `POST /auth/dev-token`, which mints any user's JWT, admin
    too: `kubejudge dev` alone turns it on (`kubejudge api --dev-tokens`), never a setting, so
    no environment copied from a development machine can."""
    metrics = ApiMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dev_tokens:
            log.warning(
                "POST /auth/dev-token is on: anyone who reaches this api can mint any user's "
                "token, admin too; it is for `kubejudge dev` on one machine only"
            )
        if settings.migrate_on_start:
            await asyncio.to_thread(migrate, settings)  # Alembic runs its own event loop
        app.state.services = await Services.start(settings, metrics)
        try:
            yield
        finally:
            await app.state.services.stop()

    app = FastAPI(
        title="kubejudge",
        version=KUBEJUDGE_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.dev_tokens = dev_tokens
    errors.install(app)
    for module in (submissions, info, problems, users, health):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=health.STATIC, check_dir=False), name="static")
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.trusted_proxies:
        proxies = [str(network) for network in settings.trusted_proxies]
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)
    app.add_middleware(
        AuthTokenMiddleware, tokens=settings.auth_token, jwt_secret=settings.jwt_secret
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
