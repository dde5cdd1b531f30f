"""The Judge0 CE 1.13.1 contract, against the real app, Redis and PostgreSQL."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from kubejudge_api.judge0_response import ALL_FIELDS
from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge import protocol, queue
from kubejudge.db.models import Submission

HELLO = {"source_code": "print('hi')", "language_id": 71}


async def _create(api: httpx.AsyncClient, body: dict[str, Any] | None = None, **params: str) -> str:
    response = await api.post("/submissions", json=body or HELLO, params=params)
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def _finish(engine: AsyncEngine, token: str, **values: Any) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(Submission).where(Submission.token == token).values(**values)
        )


async def test_create_returns_only_the_token_and_enqueues_it(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    response = await api.post("/submissions", json=HELLO)
    assert response.status_code == 201
    assert list(response.json()) == ["token"]
    token = response.json()["token"]
    [(_, fields)] = await redis.xrange(protocol.queue_stream("default"))
    assert fields[b"token"].decode() == token
    assert await redis.exists(protocol.enqueued_marker(token))


async def test_default_fields_and_formats(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    token = await _create(api)
    queued = (await api.get(f"/submissions/{token}")).json()
    assert list(queued) == [
        "token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status",
    ]  # fmt: skip
    assert queued["status"] == {"id": 1, "description": "In Queue"}
    await _finish(engine, token, status_id=3, stdout=b"hi\n", time=0.282, memory=3100)
    done = (await api.get(f"/submissions/{token}")).json()
    assert done["time"] == "0.282" and done["memory"] == 3100 and done["stdout"] == "hi\n"
    every = (await api.get(f"/submissions/{token}", params={"fields": "*"})).json()
    assert set(every) == set(ALL_FIELDS)
    assert every["cpu_time_limit"] == "5.0" and every["wall_time_limit"] == "10.0"
    assert every["memory_limit"] == 128000 and every["language"]["id"] == 71
    assert every["created_at"].endswith("Z") and len(every["created_at"]) == 24


async def test_fields_filtering_and_invalid_fields(api: httpx.AsyncClient) -> None:
    token = await _create(api)
    some = await api.get(f"/submissions/{token}", params={"fields": "status_id,language_id"})
    assert some.json() == {"status_id": 1, "language_id": 71}
    bad = await api.get(f"/submissions/{token}", params={"fields": "token,nope,worse"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid fields: [nope, worse]"}


async def test_base64_round_trip_is_mime_style(api: httpx.AsyncClient) -> None:
    source = "print('x' * 100)  # " + "y" * 80
    encoded = base64.b64encode(source.encode()).decode()
    token = await _create(api, {"source_code": encoded, "language_id": 71}, base64_encoded="true")
    got = await api.get(
        f"/submissions/{token}", params={"base64_encoded": "true", "fields": "source_code"}
    )
    text = got.json()["source_code"]
    lines = text.split("\n")
    assert text.endswith("\n") and all(len(line) == 60 for line in lines[:-2])
    assert base64.b64decode(text) == source.encode()
    plain = await api.get(f"/submissions/{token}", params={"fields": "source_code"})
    assert plain.json() == {"source_code": source}


async def test_output_that_is_not_utf8_needs_base64(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    token = await _create(api)
    await _finish(engine, token, status_id=3, stdout=b"\xff\xfe")
    plain = await api.get(f"/submissions/{token}")
    assert plain.status_code == 400
    assert "use base64_encoded=true" in plain.json()["error"]
    encoded = await api.get(f"/submissions/{token}", params={"base64_encoded": "true"})
    assert base64.b64decode(encoded.json()["stdout"]) == b"\xff\xfe"


async def test_every_validation_error_in_judge0_shape(api: httpx.AsyncClient) -> None:
    body = {
        "source_code": "  ",
        "language_id": 71,
        "cpu_time_limit": 16,
        "cpu_extra_time": -1,
        "wall_time_limit": 0.5,
        "memory_limit": 100,
        "stack_limit": "abc",
        "max_processes_and_or_threads": 0,
        "max_file_size": 5000,
        "number_of_runs": 21,
        "compiler_options": "-O3",
        "command_line_arguments": "x" * 513,
        "enable_network": True,
        "callback_url": "http://169.254.169.254/",
        "enable_per_process_and_thread_time_limit": True,
        "redirect_stderr_to_stdout": "maybe",
    }
    response = await api.post("/submissions", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "source_code": ["can't be blank"],
        "compiler_options": ["setting compiler options is only allowed for compiled languages"],
        "command_line_arguments": ["is too long (maximum is 512 characters)"],
        "cpu_time_limit": ["must be less than or equal to 15.0"],
        "cpu_extra_time": ["must be greater than or equal to 0"],
        "wall_time_limit": ["must be greater than or equal to 1"],
        "memory_limit": ["must be greater than or equal to 2048"],
        "stack_limit": ["is not a number"],
        "max_processes_and_or_threads": ["must be greater than 0"],
        "max_file_size": ["must be less than or equal to 4096"],
        "number_of_runs": ["must be less than or equal to 20"],
        "redirect_stderr_to_stdout": ["is not a boolean"],
        "enable_per_process_and_thread_time_limit": ["this option cannot be enabled"],
        "enable_network": ["enabling network is not allowed"],
        "callback_url": ["setting callback is not allowed"],
    }


async def test_language_errors(api: httpx.AsyncClient) -> None:
    missing = await api.post("/submissions", json={"source_code": "x"})
    assert missing.json() == {"language_id": ["can't be blank", "language with id  doesn't exist"]}
    unknown = await api.post("/submissions", json={"source_code": "x", "language_id": 9999})
    assert unknown.json() == {"language_id": ["language with id 9999 doesn't exist"]}


async def test_bad_bodies_are_clear_errors_and_change_nothing(
    api: httpx.AsyncClient, redis: Redis
) -> None:
    for content in (b"{", b"[1, 2]", b'"text"', b'{"source_code": 5, "language_id": 71}'):
        response = await api.post(
            "/submissions", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code in (400, 422), (content, response.text)
    nul = await api.post(
        "/submissions", json={"source_code": "x", "language_id": 54, "compiler_options": "\x00"}
    )
    assert nul.status_code == 422
    assert (await queue.backlog(redis, "default")).total == 0


async def test_unknown_token_is_404(api: httpx.AsyncClient) -> None:
    assert (await api.get("/submissions/not-a-token")).status_code == 404
    missing = await api.get("/submissions/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404


async def test_batch_rules(api: httpx.AsyncClient) -> None:
    mixed = await api.post(
        "/submissions/batch",
        json={"submissions": [HELLO, {"source_code": "x", "language_id": 1}, HELLO]},
    )
    assert mixed.status_code == 201
    first, error, third = mixed.json()
    assert "token" in first and "token" in third
    assert error == {"language_id": ["language with id 1 doesn't exist"]}
    none_valid = await api.post("/submissions/batch", json={"submissions": [{}]})
    assert none_valid.status_code == 422
    too_many = await api.post("/submissions/batch", json={"submissions": [HELLO] * 21})
    assert too_many.status_code == 400
    assert too_many.json() == {
        "error": "number of submissions in a batch should be less than or equal to 20"
    }
    empty = await api.post("/submissions/batch", json={"submissions": []})
    assert empty.json() == {"error": "there should be at least one submission in a batch"}

    tokens = f"{first['token']},00000000-0000-4000-8000-000000000000,{third['token']}"
    shown = await api.get("/submissions/batch", params={"tokens": tokens, "fields": "token"})
    assert shown.json() == {
        "submissions": [{"token": first["token"]}, None, {"token": third["token"]}]
    }


async def test_queue_full_is_503_and_changes_nothing(
    api_factory: Any, redis: Redis, engine: AsyncEngine
) -> None:
    async with api_factory(max_queue_size=2) as api:
        for _ in range(2):
            await _create(api)
        full = await api.post("/submissions", json=HELLO)
        assert full.status_code == 503
        assert full.json() == {"error": "queue is full"}
        batch = await api.post("/submissions/batch", json={"submissions": [HELLO]})
        assert batch.status_code == 503
    assert await redis.xlen(protocol.queue_stream("default")) == 2


async def test_x_auth_token(api_factory: Any, bearer: Any) -> None:
    async with api_factory(auth_token="secret-one secret-two") as api:
        assert (await api.get("/languages")).status_code == 401
        assert (await api.post("/authenticate")).status_code == 401
        headers = {"X-Auth-Token": "secret-two"}
        assert (await api.get("/languages", headers=headers)).status_code == 200
        assert (await api.post("/authenticate", headers=headers)).status_code == 200
        assert (await api.get("/languages", headers=bearer())).status_code == 200
        assert (await api.get("/healthz")).status_code == 200


async def test_oversized_body_is_413(api_factory: Any) -> None:
    async with api_factory(max_body_bytes=2048) as api:
        big = {"source_code": "x" * 5000, "language_id": 71}
        assert (await api.post("/submissions", json=big)).status_code == 413

        async def chunks() -> Any:
            for _ in range(10):
                yield b"x" * 1000

        streamed = await api.post("/submissions", content=chunks())
        assert streamed.status_code == 413


async def test_information_routes(api: httpx.AsyncClient) -> None:
    languages = (await api.get("/languages")).json()
    assert {71, 54, 62, 63, 60, 73, 48}.issubset({language["id"] for language in languages})
    assert (await api.get("/languages/54")).json()["source_file"] == "main.cpp"
    assert (await api.get("/languages/1")).status_code == 404
    assert len((await api.get("/statuses")).json()) == 14
    assert (await api.get("/about")).json()["version"] == "1.13.1"
    assert (await api.get("/version")).text == "1.13.1"
    config = (await api.get("/config_info")).json()
    assert len(config) == 39 and config["enable_callbacks"] is False
    [pool] = (await api.get("/workers")).json()
    assert set(pool) == {"queue", "size", "available", "idle", "working", "paused", "failed"}


async def test_workers_counts_live_heartbeats(api: httpx.AsyncClient, redis: Redis) -> None:
    expiry = protocol.now_ms() + 10_000
    for worker_id, tokens in (("w1", ["a"]), ("w2", [])):
        heartbeat = protocol.Heartbeat(
            worker_id=worker_id, pool="default", concurrency=2, tokens=tokens
        )
        key = protocol.worker_heartbeat("default", worker_id)
        await redis.set(key, heartbeat.model_dump_json())
        await redis.zadd(protocol.worker_index("default"), {worker_id: expiry})
    await redis.zadd(protocol.worker_index("default"), {"dead": protocol.now_ms() - 1})
    await _create(api)
    [pool] = (await api.get("/workers")).json()
    assert pool == {
        "queue": "default", "size": 1, "available": 4, "idle": 3, "working": 1,
        "paused": 0, "failed": 0,
    }  # fmt: skip
