"""Beyond Judge0: users, idempotency keys, rate limits, wait=true, problems, the reconciler."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from kubejudge_api import reconciler
from kubejudge_api.settings import ApiSettings
from kubejudge_dev import localservices
from redis.asyncio import Redis
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from support.events import submission_state

from kubejudge import events, protocol, queue
from kubejudge.db.models import Submission

HELLO = {"source_code": "print('hi')", "language_id": 71}
PROBLEM = {
    "slug": "sum",
    "title": "Sum",
    "statement": "Add two numbers.",
    "tests": [
        {"input": "1 2\n", "expected_output": "3\n", "hidden": False},
        {"input": "secret-in", "expected_output": "secret-out"},
    ],
}


async def test_users_see_their_own_submissions(api: httpx.AsyncClient, bearer: Any) -> None:
    mine = (await api.post("/submissions", json=HELLO, headers=bearer("alice"))).json()["token"]
    await api.post("/submissions", json=HELLO, headers=bearer("bob"))
    await api.post("/submissions", json=HELLO)  # anonymous Judge0 client
    page = (await api.get("/users/me/submissions", headers=bearer("alice"))).json()
    assert [entry["token"] for entry in page["submissions"]] == [mine]
    assert page["meta"]["total_count"] == 1
    listed = await api.get("/submissions", headers=bearer("alice"), params={"fields": "token"})
    assert listed.json()["submissions"] == [{"token": mine}]
    assert (await api.get("/submissions")).status_code == 403
    assert (await api.get("/users/me/submissions")).status_code == 401
    bad = await api.get("/users/me/submissions", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401


async def test_idempotency_key_returns_the_first_submission(
    api: httpx.AsyncClient, bearer: Any, redis: Redis
) -> None:
    headers = {**bearer("alice"), "Idempotency-Key": "k-1"}
    first = await api.post("/submissions", json=HELLO, headers=headers)
    again = await asyncio.gather(
        *(api.post("/submissions", json=HELLO, headers=headers) for _ in range(5))
    )
    assert {response.json()["token"] for response in again} == {first.json()["token"]}
    other_user = await api.post(
        "/submissions", json=HELLO, headers={**bearer("bob"), "Idempotency-Key": "k-1"}
    )
    assert other_user.json()["token"] != first.json()["token"]
    assert await redis.xlen(protocol.queue_stream("default")) == 2
    anonymous = await api.post("/submissions", json=HELLO, headers={"Idempotency-Key": "k"})
    assert anonymous.status_code == 400


async def test_rate_limit_is_429_with_retry_after(api_factory: Any, bearer: Any) -> None:
    # A long window, so that the test never straddles two windows.
    async with api_factory(rate_limit_submissions=3, rate_limit_window_s=3600) as api:
        for _ in range(3):
            ok = await api.post("/submissions", json=HELLO, headers=bearer("alice"))
            assert ok.status_code == 201
        limited = await api.post("/submissions", json=HELLO, headers=bearer("alice"))
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["Retry-After"]) <= 3600
        assert (await api.post("/submissions", json=HELLO, headers=bearer("bob"))).is_success
        batch = await api.post(
            "/submissions/batch", json={"submissions": [HELLO] * 3}, headers=bearer("bob")
        )
        assert batch.status_code == 429  # 1 + 3 > 3, refused whole and not counted
        assert (await api.post("/submissions", json=HELLO, headers=bearer("bob"))).is_success


async def test_wait_true_wakes_on_the_verdict_event(
    api: httpx.AsyncClient, redis: Redis, engine: AsyncEngine
) -> None:
    async def judge() -> None:
        # Block on the queue as a worker does.
        await queue.ensure_group(redis, "default")
        [(_, entries)] = await redis.xreadgroup(
            protocol.QUEUE_GROUP, "w", {protocol.queue_stream("default"): ">"}, count=1, block=5000
        )
        token = entries[0][1][b"token"].decode()
        await asyncio.sleep(0.2)
        async with engine.begin() as connection:
            await connection.execute(
                update(Submission)
                .where(Submission.token == token)
                .values(status_id=3, stdout=b"hi\n", time=0.01, memory=1000)
            )
        event = protocol.Event(type="verdict", token=token, data=submission_state(token))
        await events.publish(redis, user_id=None, event=event, history_length=10)

    worker = asyncio.create_task(judge())
    response = await api.post("/submissions", json=HELLO, params={"wait": "true"})
    await worker
    assert response.status_code == 201
    assert response.json()["status"]["id"] == 3 and response.json()["stdout"] == "hi\n"


async def test_wait_true_is_bounded(api_factory: Any) -> None:
    async with api_factory(wait_timeout_s=0.3) as api:
        response = await api.post("/submissions", json=HELLO, params={"wait": "true"})
    assert response.status_code == 201
    assert response.json()["status"] == {"id": 1, "description": "In Queue"}


async def test_reconciler_enqueues_a_lost_submission_exactly_once(
    settings: Any, redis: Redis, engine: AsyncEngine, api: httpx.AsyncClient
) -> None:
    # The api committed the row and died before enqueueing it.
    token = "6f1c1a4e-0000-4000-8000-000000000001"
    template = await api.post("/submissions", json=HELLO)
    async with engine.begin() as connection:
        row = (
            (
                await connection.execute(
                    select(Submission.__table__).where(Submission.token == template.json()["token"])
                )
            )
            .mappings()
            .one()
        )
        values = {k: v for k, v in row.items() if k not in ("id", "token", "created_at")}
        await connection.execute(insert(Submission.__table__).values({**values, "token": token}))
    api_settings = ApiSettings(
        redis_url=settings.redis_url,
        database_url=settings.database_url,
        reconcile_after_s=0.05,
    )
    await asyncio.sleep(0.1)
    passes = await asyncio.gather(
        *(reconciler.reconcile_once(redis, engine, api_settings) for _ in range(4))
    )
    assert sum(found.count(token) for found in passes) == 1
    assert sum(len(found) for found in passes) == 1  # the enqueued one is left alone
    tokens = [
        fields[b"token"].decode()
        for _, fields in await redis.xrange(protocol.queue_stream("default"))
    ]
    assert sorted(tokens) == sorted([template.json()["token"], token])
    assert await reconciler.reconcile_once(redis, engine, api_settings) == []


async def test_problems_admin_and_public_views(api: httpx.AsyncClient, bearer: Any) -> None:
    assert (await api.post("/problems", json=PROBLEM)).status_code == 401
    assert (await api.post("/problems", json=PROBLEM, headers=bearer())).status_code == 403
    created = await api.post("/problems", json=PROBLEM, headers=bearer("root", admin=True))
    assert created.status_code == 201
    problem_id = created.json()["id"]
    taken = await api.post("/problems", json=PROBLEM, headers=bearer("root", admin=True))
    assert taken.status_code == 422 and taken.json() == {"slug": ["has already been taken"]}
    public = (await api.get(f"/problems/{problem_id}")).json()
    assert public["tests"] == [{"position": 1, "input": "1 2\n", "expected_output": "3\n"}]
    assert public["hidden_tests"] == 1 and "secret" not in str(public)
    assert [p["slug"] for p in (await api.get("/problems")).json()] == ["sum"]
    assert (await api.get("/problems/999")).status_code == 404


async def test_problem_submission_reports_tests_without_hidden_data(
    api: httpx.AsyncClient, bearer: Any, engine: AsyncEngine
) -> None:
    admin = bearer("root", admin=True)
    problem_id = (await api.post("/problems", json=PROBLEM, headers=admin)).json()["id"]
    missing = await api.post("/submissions", json={**HELLO, "problem_id": 12345})
    assert missing.status_code == 422
    token = (
        await api.post("/submissions", json={**HELLO, "problem_id": problem_id}, headers=admin)
    ).json()["token"]
    results = [
        {"test": 1, "status": {"id": 3}, "time": "0.01", "memory": 100, "stdout": "3\n"},
        {"test": 2, "status": {"id": 4}, "time": "0.01", "memory": 100, "stdout": "leak"},
    ]
    async with engine.begin() as connection:
        await connection.execute(
            update(Submission)
            .where(Submission.token == token)
            .values(status_id=4, test_results=results, memory_limit_exceeded=False)
        )
    shown = (await api.get(f"/submissions/{token}")).json()
    assert shown["problem_id"] == problem_id and shown["memory_limit_exceeded"] is False
    assert [test["test"] for test in shown["tests"]] == [1, 2]
    assert "leak" not in str(shown) and "stdout" not in shown["tests"][0]
    plain = (await api.post("/submissions", json=HELLO)).json()["token"]
    assert "tests" not in (await api.get(f"/submissions/{plain}", params={"fields": "*"})).json()


async def test_no_reader_sees_the_old_problem_after_an_update_returns(
    api: httpx.AsyncClient, bearer: Any
) -> None:
    admin = bearer("root", admin=True)
    problem_id = (await api.post("/problems", json=PROBLEM, headers=admin)).json()["id"]
    done = asyncio.Event()
    acknowledged: dict[str, int] = {"version": 1}
    stale: list[tuple[int, int]] = []

    async def reader() -> None:
        while not done.is_set():
            floor = acknowledged["version"]  # acknowledged before this read started
            for path in (f"/problems/{problem_id}", "/problems"):
                body = (await api.get(path)).json()
                version = body["version"] if isinstance(body, dict) else body[0]["version"]
                if version < floor:
                    stale.append((floor, version))

    readers = [asyncio.create_task(reader()) for _ in range(4)]
    for version in range(2, 22):
        update_body = {**PROBLEM, "title": f"Sum v{version}"}
        response = await api.put(f"/problems/{problem_id}", json=update_body, headers=admin)
        assert response.status_code == 200
        acknowledged["version"] = version
        await asyncio.sleep(0.005)
    done.set()
    await asyncio.gather(*readers)
    assert stale == []
    final = (await api.get(f"/problems/{problem_id}")).json()
    assert final["version"] == 21 and final["title"] == "Sum v21"


async def test_dev_tokens_only_when_enabled(api_factory: Any) -> None:
    async with api_factory() as api:
        assert (await api.post("/auth/dev-token", json={"user_id": "a"})).status_code == 404
    async with api_factory(dev_tokens=True) as api:
        minted = await api.post("/auth/dev-token", json={"user_id": "a", "admin": True})
        headers = {"Authorization": f"Bearer {minted.json()['token']}"}
        assert (await api.post("/problems", json=PROBLEM, headers=headers)).status_code == 201


async def test_health_ready_metrics_and_page(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"postgres": "ok", "redis": "ok"}
    await api.post("/submissions", json=HELLO)
    await api.post("/submissions", json={})
    text = (await api.get("/metrics")).text
    assert 'kubejudge_api_submissions_total{outcome="accepted",reason=""} 1.0' in text
    assert '{code="201",method="POST",route="/submissions"}' in text
    assert 'kubejudge_queue_backlog{pool="default"} 1.0' in text
    assert (await api.get("/")).status_code == 200
    assert (await api.get("/openapi.json")).json()["info"]["title"] == "kubejudge"


async def test_redis_down_after_commit_still_accepts_and_the_reconciler_recovers(
    api_factory: Any, settings: Any, redis: Redis, engine: AsyncEngine
) -> None:
    dead = f"redis://127.0.0.1:{localservices.free_port()}/0"
    async with api_factory(redis_url=dead) as api:
        response = await api.post("/submissions", json=HELLO)
        assert response.status_code == 201
        token = response.json()["token"]
        shown = await api.get(f"/submissions/{token}")
        assert shown.json()["status"]["id"] == 1
        assert (await api.get("/readyz")).status_code == 503
    assert await redis.xlen(protocol.queue_stream("default")) == 0
    api_settings = ApiSettings(
        redis_url=settings.redis_url, database_url=settings.database_url, reconcile_after_s=0.01
    )
    await asyncio.sleep(0.05)
    assert await reconciler.reconcile_once(redis, engine, api_settings) == [token]


async def test_x_auth_user_lists_every_submission(api_factory: Any, bearer: Any) -> None:
    async with api_factory(authz_token="judge-admin") as api:
        await api.post("/submissions", json=HELLO)
        await api.post("/submissions", json=HELLO, headers=bearer("alice"))
        everything = await api.get("/submissions", headers={"X-Auth-User": "judge-admin"})
        assert everything.json()["meta"]["total_count"] == 2
        assert (await api.post("/authorize", headers={"X-Auth-User": "judge-admin"})).is_success
        assert (await api.get("/submissions", headers={"X-Auth-User": "no"})).status_code == 403
        paged = await api.get(
            "/submissions",
            headers={"X-Auth-User": "judge-admin"},
            params={"page": "2", "per_page": "1"},
        )
        assert paged.json()["meta"] == {
            "current_page": 2, "next_page": None, "prev_page": 1, "total_pages": 2,
            "total_count": 2,
        }  # fmt: skip
        token = everything.json()["submissions"][0]["token"]
        assert (await api.delete(f"/submissions/{token}")).status_code == 403
        refused = await api.delete(f"/submissions/{token}", headers={"X-Auth-User": "judge-admin"})
        assert refused.json() == {"error": "delete not allowed"}
        assert (await api.get("/submissions", params={"page": "0"}, headers=bearer())).json() == {
            "error": "invalid page: 0"
        }


async def test_waiters_share_one_pubsub_connection(api_factory: Any, redis: Redis) -> None:
    async def pubsub_clients() -> dict[str, str]:
        listing = (await redis.execute_command("CLIENT", "LIST", "TYPE", "pubsub")).decode()
        return {line.split()[0]: line for line in listing.splitlines() if line}

    before = await pubsub_clients()  # other apps of the session may hold their own
    async with api_factory(wait_timeout_s=1.0) as api:
        waiting = [
            asyncio.create_task(api.post("/submissions", json=HELLO, params={"wait": "true"}))
            for _ in range(20)
        ]
        await asyncio.sleep(0.5)
        during = await pubsub_clients()
        responses = await asyncio.gather(*waiting)
    new = [line for client, line in during.items() if client not in before]
    assert len(new) == 1, new
    assert " sub=20 " in new[0]
    assert all(response.status_code == 201 for response in responses)
