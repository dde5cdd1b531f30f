"""`kubejudge api`: serve the Judge0-compatible API with uvicorn (one process; scale out with
replicas), or `--migrate` to bring the schema up to date and exit."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from kubejudge.db.engine import migrate
from kubejudge.wellknown import API_PORT
from kubejudge_api.app import create_app
from kubejudge_api.settings import ApiSettings

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
    parser.add_argument(
        "--port", type=int, default=API_PORT, help=f"port (default {API_PORT}, Judge0's)"
    )
    parser.add_argument("--migrate", action="store_true", help="run database migrations, then exit")
    parser.add_argument(
        "--dev-tokens",
        action="store_true",
        help="serve POST /auth/dev-token, which mints any user's JWT (for `kubejudge dev` only)",
    )


def run(args: argparse.Namespace) -> int:
    settings = ApiSettings()
    if args.migrate:
        migrate(settings)
        log.info("database schema is up to date")
        return 0
    uvicorn.run(
        create_app(settings, dev_tokens=args.dev_tokens),
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        # The app reads X-Forwarded-For itself, from KUBEJUDGE_TRUSTED_PROXIES only.
        proxy_headers=False,
    )
    return 0
