"""Problems: public reads (cache-aside), admin create and replace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path

from kubejudge_api import problem_store
from kubejudge_api.deps import AdminDep, ServicesDep
from kubejudge_api.errors import ApiError, error
from kubejudge_api.problem_store import ProblemIn

router = APIRouter(prefix="/problems", tags=["problems"])
ProblemId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("")
async def list_problems(services: ServicesDep) -> list[dict[str, Any]]:
    return await problem_store.listing(
        services.engine, services.redis, ttl_s=services.settings.problem_cache_ttl_s
    )


@router.get("/{problem_id}")
async def get_problem(problem_id: ProblemId, services: ServicesDep) -> dict[str, Any]:
    """A problem with its visible tests; hidden tests are only counted."""
    found = await problem_store.get(
        services.engine, services.redis, problem_id, ttl_s=services.settings.problem_cache_ttl_s
    )
    if found is None:
        raise error(404, "Not Found")
    return found


@router.post("", status_code=201)
async def create_problem(body: ProblemIn, services: ServicesDep, _: AdminDep) -> dict[str, int]:
    problem_id = await _write(services, body, problem_id=None)
    return {"id": problem_id}


@router.put("/{problem_id}")
async def replace_problem(
    problem_id: ProblemId, body: ProblemIn, services: ServicesDep, _: AdminDep
) -> dict[str, int]:
    """Replace the problem and all its tests; readers see the new version once this returns."""
    await _write(services, body, problem_id=problem_id)
    return {"id": problem_id}


async def _write(services: ServicesDep, body: ProblemIn, *, problem_id: int | None) -> int:
    ttl_s = services.settings.problem_cache_ttl_s
    try:
        if problem_id is None:
            written = await problem_store.create(
                services.engine, services.redis, problem=body, ttl_s=ttl_s
            )
        else:
            written = await problem_store.replace(
                services.engine, services.redis, problem_id=problem_id, problem=body, ttl_s=ttl_s
            )
    except problem_store.SlugTaken as taken:
        raise ApiError(422, {"slug": ["has already been taken"]}) from taken
    except problem_store.CacheUnavailable as down:
        raise error(503, "the problem cache is unavailable; nothing was changed") from down
    if written is None:
        raise error(404, "Not Found")
    return written
