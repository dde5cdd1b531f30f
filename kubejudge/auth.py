"""User identity: HS256 bearer JWTs whose `sub` is the user id. The api and gateway both
verify with this module, so a token good for one is good for the other."""

from __future__ import annotations

import time
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
