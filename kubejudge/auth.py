"""User identity: HS256 bearer JWTs whose `sub` is the user id. The api and gateway both
verify with this module, so a token good for one is good for the other."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is malformed, badly signed, expired, or names no user."""


@dataclass(frozen=True, slots=True)
class User:
    id: str
    admin: bool = False
    # When the token that named the user expires (Unix seconds): a socket it opened closes
    # then. Not part of who the user is, so two tokens of one user compare equal.
    expires_at: int | None = field(default=None, compare=False)


def issue(*, secret: str, user_id: str, admin: bool = False, ttl_s: int = 24 * 3600) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_s, "admin": admin}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(token: str, *, secret: str) -> User:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "exp"]}
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > 128:
        raise InvalidToken("expected `sub` to be a user id of 1 to 128 characters")
    return User(id=subject, admin=claims.get("admin") is True, expires_at=int(claims["exp"]))


class VerifiedTokens:
    """`verify` for a process that sees the same tokens again and again (a client sends its JWT
    with every request): a token that verified is kept, with its user, for `ttl_s` in a
    least-recently-used table of at most `size`, so it pays for the HMAC and the JSON once per
    `ttl_s` rather than once per request. A kept token is still refused the moment its own
    `exp` passes; a token that failed is never kept, so it fails, and is checked, every time."""

    def __init__(self, *, secret: str, ttl_s: float = 30.0, size: int = 10_000) -> None:
        self._secret = secret
        self._ttl_s = ttl_s
        self._size = size
        self._kept: OrderedDict[str, tuple[User, float]] = OrderedDict()  # -> (user, kept until)

    def verify(self, token: str) -> User:
        kept = self._kept.get(token)
        if kept is not None:
            user, until = kept
            if time.monotonic() < until and (
                user.expires_at is None or time.time() < user.expires_at
            ):
                self._kept.move_to_end(token)
                return user
            del self._kept[token]
        user = verify(token, secret=self._secret)  # raises InvalidToken: nothing kept
        self._kept[token] = (user, time.monotonic() + self._ttl_s)
        if len(self._kept) > self._size:
            self._kept.popitem(last=False)
        return user
