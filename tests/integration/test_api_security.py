"""What an outside review of the api got through, held shut: one test per finding."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from kubejudge_api import submission_store

from kubejudge import auth
from kubejudge.settings import Settings

HELLO = {"source_code": "print('hi')", "language_id": 71}
TOKEN = "judge0-token"


def _junk_authorizations(settings: Settings) -> dict[str, str]:
    forged = auth.issue(secret="not-the-api-secret-0123456789abcdef", user_id="eve", admin=True)
    expired = auth.issue(secret=settings.jwt_secret, user_id="eve", ttl_s=-60)
    return {
        "junk": "junk",
        "empty": "",
        "basic": "Basic ZXZlOmV2ZQ==",
        "bearer-empty": "Bearer ",
        "bearer-garbage": "Bearer not-a-jwt",
        "bearer-forged": f"Bearer {forged}",
        "bearer-expired": f"Bearer {expired}",
    }


async def test_x_auth_token_holds_whatever_authorization_comes(
    api_factory: Any, bearer: Any, settings: Settings
) -> None:
    async with api_factory(auth_token=TOKEN) as api:
        created = await api.post("/submissions", json=HELLO, headers={"X-Auth-Token": TOKEN})
        token = created.json()["token"]
        paths = [
            f"/submissions/{token}?fields=source_code,stdout",
            f"/submissions/batch?tokens={token}",
            "/problems", "/workers", "/config_info", "/languages", "/statuses", "/about",
        ]  # fmt: skip
        for name, header in _junk_authorizations(settings).items():
            for path in paths:
                response = await api.get(path, headers={"Authorization": header})
                assert response.status_code == 401, (name, path, response.text)
            refused = await api.post("/submissions", json=HELLO, headers={"Authorization": header})
            assert refused.status_code == 401, name
        for path in paths:
            assert (await api.get(path, headers=bearer("alice"))).status_code == 200, path
            with_token = {"X-Auth-Token": TOKEN, "Authorization": "junk"}
            assert (await api.get(path, headers=with_token)).status_code == 200, path


async def test_a_problem_governs_every_cost_bearing_field(api: Any, bearer: Any) -> None:
    problem = {
        "slug": "costly", "title": "Costly", "cpu_time_limit": "1.5", "memory_limit": 64_000,
        "tests": [{"input": "", "expected_output": ""}],
    }  # fmt: skip
    admin = bearer("root", admin=True)
    problem_id = (await api.post("/problems", json=problem, headers=admin)).json()["id"]
    greedy = {
        **HELLO, "problem_id": problem_id, "number_of_runs": 20, "wall_time_limit": 20,
        "cpu_time_limit": 15, "cpu_extra_time": 5, "memory_limit": 512_000,
        "stack_limit": 128_000, "max_processes_and_or_threads": 120, "max_file_size": 4096,
    }  # fmt: skip
    token = (await api.post("/submissions", json=greedy, headers=bearer())).json()["token"]
    shown = (await api.get(f"/submissions/{token}", params={"fields": "*"})).json()
    governed = {name: shown[name] for name in greedy if name not in HELLO}
    assert set(governed) - {"problem_id"} == submission_store.PROBLEM_GOVERNED
    assert governed == {
        "problem_id": problem_id, "number_of_runs": 1, "wall_time_limit": "3.0",
        "cpu_time_limit": "1.5", "cpu_extra_time": "1.0", "memory_limit": 64_000,
        "stack_limit": 64_000, "max_processes_and_or_threads": 60, "max_file_size": 1024,
    }  # fmt: skip


async def test_anonymous_callers_are_rate_limited_per_address(
    api_factory: Any, bearer: Any
) -> None:
    # A long window, so that the test never straddles two windows.
    async with api_factory(rate_limit_anonymous_submissions=2, rate_limit_window_s=3600) as api:
        for _ in range(2):
            assert (await api.post("/submissions", json=HELLO)).status_code == 201
        limited = await api.post("/submissions", json=HELLO)
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 3600
        # Nobody configured a trusted proxy, so a forwarded address is the sender's own claim.
        spoofed = await api.post(
            "/submissions", json=HELLO, headers={"X-Forwarded-For": "198.51.100.7"}
        )
        assert spoofed.status_code == 429
        assert (await api.post("/submissions", json=HELLO, headers=bearer())).status_code == 201
    # With X-Auth-Token on, only the operator's own clients get this far.
    async with api_factory(
        rate_limit_anonymous_submissions=1, rate_limit_window_s=3600, auth_token=TOKEN
    ) as api:
        for _ in range(3):
            created = await api.post("/submissions", json=HELLO, headers={"X-Auth-Token": TOKEN})
            assert created.status_code == 201


async def test_a_trusted_proxy_names_the_client_and_nobody_else_does(api_factory: Any) -> None:
    async def submit(forwarded_for: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for}
        return (await api.post("/submissions", json=HELLO, headers=headers)).status_code

    # The test client connects from 127.0.0.1, here a trusted proxy.
    async with api_factory(
        rate_limit_anonymous_submissions=1, rate_limit_window_s=3600,
        trusted_proxies=["127.0.0.0/8"],
    ) as api:  # fmt: skip
        assert await submit("198.51.100.7") == 201
        assert await submit("198.51.100.7") == 429
        assert await submit("198.51.100.8") == 201
        # Entries left of the proxy's own are the client's to write: they are not read.
        assert await submit("203.0.113.1, 198.51.100.7") == 429
        # One IPv6 subscriber (a /64) is one caller.
        assert await submit("2001:db8:0:1::1") == 201
        assert await submit("2001:db8:0:1::2") == 429
        assert await submit("2001:db8:0:2::1") == 201


async def test_an_idempotency_key_reused_with_another_request_is_422(api: Any, bearer: Any) -> None:
    alice = {**bearer("alice"), "Idempotency-Key": "k-1"}
    first = await api.post("/submissions", json=HELLO, headers=alice)
    assert first.status_code == 201
    # The same request, however it is spelled, is a replay: the first submission's token.
    same = [
        {"language_id": 71, "source_code": "print('hi')"},
        {**HELLO, "number_of_runs": 1, "stdin": None},
    ]
    for body in same:
        replay = await api.post("/submissions", json=body, headers=alice)
        assert (replay.status_code, replay.json()) == (201, first.json())
    encoded = await api.post(
        "/submissions", json={**HELLO, "source_code": "cHJpbnQoJ2hpJyk="}, headers=alice,
        params={"base64_encoded": "true"},
    )  # fmt: skip
    assert encoded.json() == first.json()
    for different in ({**HELLO, "source_code": "print('other')"}, {**HELLO, "stdin": "1"},
                      {**HELLO, "cpu_time_limit": 2}, {**HELLO, "language_id": 54}):  # fmt: skip
        reused = await api.post("/submissions", json=different, headers=alice)
        assert reused.status_code == 422, different
        assert reused.json() == {
            "Idempotency-Key": ["has already been used with a different request"]
        }
    # Keys are per user: another user's request with it is a new submission.
    bob = await api.post(
        "/submissions",
        json={**HELLO, "stdin": "1"},
        headers={**bearer("bob"), "Idempotency-Key": "k-1"},
    )
    assert bob.status_code == 201 and bob.json() != first.json()


async def test_dev_tokens_are_only_ever_turned_on_explicitly_and_said_so(
    api_factory: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # An environment copied from a development machine does not turn the mint on.
    monkeypatch.setenv("KUBEJUDGE_DEV_TOKENS", "true")
    async with api_factory() as api:
        assert (await api.post("/auth/dev-token", json={"user_id": "a"})).status_code == 404
    assert "dev-token" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="kubejudge_api.app"):
        async with api_factory(dev_tokens=True) as api:
            assert (await api.post("/auth/dev-token", json={"user_id": "a"})).status_code == 200
    [warning] = [record for record in caplog.records if "/auth/dev-token" in record.message]
    assert warning.levelno == logging.WARNING and "admin" in warning.message
