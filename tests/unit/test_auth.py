from __future__ import annotations

import time

import pytest

from kubejudge import auth

SECRET = "unit-test-secret-0123456789abcdef-xyz"


def test_issued_token_verifies_to_its_user() -> None:
    token = auth.issue(secret=SECRET, user_id="alice", admin=True)
    assert auth.verify(token, secret=SECRET) == auth.User(id="alice", admin=True)


def test_a_verified_user_carries_its_token_expiry() -> None:
    before = int(time.time())
    user = auth.verify(auth.issue(secret=SECRET, user_id="alice", ttl_s=60), secret=SECRET)
    assert user.expires_at is not None and before + 60 <= user.expires_at <= time.time() + 60


@pytest.mark.parametrize(
    "token",
    [
        auth.issue(secret="another-secret-0123456789abcdef-xyz", user_id="alice"),
        auth.issue(secret=SECRET, user_id="alice", ttl_s=-10),
        auth.issue(secret=SECRET, user_id=""),
        "not-a-jwt",
    ],
    ids=["wrong-key", "expired", "empty-subject", "garbage"],
)
def test_bad_tokens_are_refused(token: str) -> None:
    with pytest.raises(auth.InvalidToken):
        auth.verify(token, secret=SECRET)
