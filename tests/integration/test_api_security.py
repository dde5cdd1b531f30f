"""What an outside review of the api got through, held shut: one test per finding."""

from __future__ import annotations

from typing import Any

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
