"""Signed-in users: their own submissions, and the dev-only token mint."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from kubejudge import auth
from kubejudge_api.deps import ServicesDep, UserDep
from kubejudge_api.errors import error
from kubejudge_api.routes.submissions import list_page, requested_fields

router = APIRouter(tags=["users"])


class DevTokenRequest(BaseModel):
    user_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[\x21-\x7e]+$")]
    admin: bool = False


@router.get("/users/me/submissions")
async def my_submissions(
    services: ServicesDep,
    user: UserDep,
    page: str | None = None,
    per_page: str | None = None,
    base64_encoded: str | None = None,
    fields: str | None = None,
) -> dict[str, Any]:
    """The caller's submissions, newest first, in Judge0's `{submissions, meta}` shape."""
    return await list_page(
        services, owner=user.id, page=page, per_page=per_page, fields=requested_fields(fields),
        base64_encoded=base64_encoded == "true",
    )  # fmt: skip


@router.post("/auth/dev-token")
async def dev_token(
    body: DevTokenRequest, request: Request, services: ServicesDep
) -> dict[str, str]:
    """Mint a JWT for any user (admin too). Only under `kubejudge dev` (`api --dev-tokens`)."""
    if not request.app.state.dev_tokens:
        raise error(404, "Not Found")
    token = auth.issue(secret=services.settings.jwt_secret, user_id=body.user_id, admin=body.admin)
    return {"token": token}
