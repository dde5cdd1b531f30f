"""`kubejudge dev`'s classic problems: seeded into an empty judge only, once, through the api's
write path (so a list cached while empty is not served stale), never over anyone's problems."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from kubejudge_dev.seed import CLASSICS, seed_if_empty
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

TTL_S = 300


async def test_an_empty_judge_gets_the_classics_once_and_the_page_lists_them(
    api: httpx.AsyncClient, engine: AsyncEngine, redis: Redis
) -> None:
    assert (await api.get("/problems")).json() == []  # and that empty list is now cached
    added = await seed_if_empty(engine, redis, ttl_s=TTL_S)
    assert added == [classic.slug for classic in CLASSICS] and len(added) >= 5
    listed = (await api.get("/problems")).json()
    assert sorted(problem["slug"] for problem in listed) == sorted(added)

    assert await seed_if_empty(engine, redis, ttl_s=TTL_S) == []
    assert len((await api.get("/problems")).json()) == len(added)

    one = (await api.get(f"/problems/{listed[0]['id']}")).json()
    assert one["statement"] and len(one["tests"]) == 1 and one["hidden_tests"] >= 3


async def test_a_judge_with_problems_of_its_own_is_left_alone(
    api: httpx.AsyncClient,
    engine: AsyncEngine,
    redis: Redis,
    bearer: Callable[..., dict[str, str]],
) -> None:
    own = {"slug": "a-plus-b", "title": "Ours", "tests": [{"input": "1", "expected_output": "1"}]}
    created = await api.post("/problems", json=own, headers=bearer(admin=True))
    assert created.status_code == 201, created.text

    assert await seed_if_empty(engine, redis, ttl_s=TTL_S) == []
    listed = (await api.get("/problems")).json()
    assert [(problem["slug"], problem["title"]) for problem in listed] == [("a-plus-b", "Ours")]
