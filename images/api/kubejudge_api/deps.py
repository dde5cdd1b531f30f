"""Request dependencies: the process's services, the caller's identity, and Judge0's
X-Auth-Token / X-Auth-User checks. Dependencies are `async def`: FastAPI runs plain `def`
ones in a thread pool, which cost more than the rest of a submission's accept path."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kubejudge import auth
from kubejudge_api.errors import error
from kubejudge_api.middleware import authtoken
from kubejudge_api.services import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def caller(request: Request, services: ServicesDep) -> auth.User | None:
    """The bearer JWT's user; None for anonymous (Judge0) clients; 401 for a bad token."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise error(401, "expected `Authorization: Bearer <JWT>`")
    try:
        return services.tokens.verify(token.strip())
    except auth.InvalidToken as invalid:
        raise error(401, f"invalid token: {invalid}") from invalid


CallerDep = Annotated[auth.User | None, Depends(caller)]


async def signed_in(user: CallerDep) -> auth.User:
    if user is None:
        raise error(401, "this needs `Authorization: Bearer <JWT>`")
    return user


async def admin(user: Annotated[auth.User, Depends(signed_in)]) -> auth.User:
    if not user.admin:
        raise error(403, "this needs an admin token")
    return user


UserDep = Annotated[auth.User, Depends(signed_in)]
AdminDep = Annotated[auth.User, Depends(admin)]


async def token_valid(request: Request, services: ServicesDep) -> bool:
    """Judge0's X-Auth-Token check (for `/authenticate`; the middleware guards the rest)."""
    given = authtoken.given_token(request.headers, request.scope["query_string"])
    return authtoken.valid(given, services.settings.auth_token)


def authorized_user(request: Request, services: Services) -> bool:
    """Judge0's X-Auth-User check for the all-submissions listing."""
    configured = services.settings.authz_token
    given = request.headers.get("x-auth-user") or request.query_params.get("X-Auth-User")
    return bool(configured) and authtoken.valid(given, configured)
