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


def test_a_kept_token_is_refused_the_moment_it_expires() -> None:
    tokens = auth.VerifiedTokens(secret=SECRET, ttl_s=60)
    token = auth.issue(secret=SECRET, user_id="alice", ttl_s=1)
    assert tokens.verify(token).id == "alice"
    time.sleep(1.1)
    with pytest.raises(auth.InvalidToken):
        tokens.verify(token)


def test_a_refused_token_is_checked_and_refused_every_time() -> None:
    tokens = auth.VerifiedTokens(secret=SECRET)
    forged = auth.issue(secret="another-secret-0123456789abcdef-xyz", user_id="alice")
    for _ in range(2):
        with pytest.raises(auth.InvalidToken):
            tokens.verify(forged)


def test_a_kept_token_is_verified_again_after_its_ttl_and_the_table_stays_bounded() -> None:
    tokens = auth.VerifiedTokens(secret=SECRET, ttl_s=0.05, size=2)
    issued = [auth.issue(secret=SECRET, user_id=f"user-{n}") for n in range(3)]
    assert [tokens.verify(token).id for token in issued] == ["user-0", "user-1", "user-2"]
    assert len(tokens._kept) == 2
    time.sleep(0.06)
    assert tokens.verify(issued[2]).id == "user-2"
    assert tokens._kept[issued[2]][1] > time.monotonic()  # kept anew from its new check
