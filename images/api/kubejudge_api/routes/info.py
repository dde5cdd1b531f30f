"""Judge0's informational routes: languages, statuses, about, config, workers, auth checks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response

from kubejudge.languages import LANGUAGES
from kubejudge.statuses import Status
from kubejudge_api import judge0_info, worker_summary
from kubejudge_api.deps import ServicesDep, authorized_user, token_valid
from kubejudge_api.errors import error

router = APIRouter(tags=["judge0"])


@router.get("/languages")
async def languages() -> list[dict[str, Any]]:
    return [language.public() for language in sorted(LANGUAGES.values(), key=lambda x: x.id)]


@router.get("/languages/all")
async def all_languages() -> list[dict[str, Any]]:
    """Judge0 sorts this one by name and marks archived rows (we have none)."""
    ordered = sorted(LANGUAGES.values(), key=lambda language: (language.name, language.id))
    return [dict(language.public(), is_archived=False) for language in ordered]


@router.get("/languages/{language_id}")
async def language(language_id: int) -> dict[str, Any]:
    found = LANGUAGES.get(language_id)
    if found is None:
        raise error(404, "Not Found")
    return found.detail()


@router.get("/statuses")
async def statuses() -> list[dict[str, Any]]:
    return [status.public() for status in Status]


@router.get("/about")
async def about() -> dict[str, str]:
    return judge0_info.about()


@router.get("/version", response_class=PlainTextResponse)
async def version() -> str:
    return judge0_info.JUDGE0_VERSION


@router.get("/config_info")
async def config_info(services: ServicesDep) -> dict[str, Any]:
    return judge0_info.config_info(services.settings)


@router.get("/workers")
async def worker_pools(services: ServicesDep) -> list[dict[str, Any]]:
    """Per pool: queue, size (waiting), available/idle/working judging slots, paused, failed."""
    return await worker_summary.summary(services.redis, list(services.settings.pools))


@router.post("/authenticate")
async def authenticate(valid: Annotated[bool, Depends(token_valid)]) -> Response:
    """200 when the X-Auth-Token is valid (or authentication is off), else 401."""
    return Response(status_code=200 if valid else 401)


@router.post("/authorize")
async def authorize(request: Request, services: ServicesDep) -> Response:
    """200 when the X-Auth-User is valid, else 403."""
    return Response(status_code=200 if authorized_user(request, services) else 403)
