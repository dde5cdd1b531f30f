"""Judge0's submission routes (`/submissions`, `/submissions/batch`)."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from kubejudge import auth
from kubejudge_api import accept, judge0_request, submission_store
from kubejudge_api.deps import CallerDep, ServicesDep, authorized_user
from kubejudge_api.errors import ApiError, error
from kubejudge_api.judge0_request import InvalidSubmission, NewSubmission
from kubejudge_api.judge0_response import NOT_UTF8, InvalidFields, NotUtf8, parse_fields, render
from kubejudge_api.schemas import BATCH_BODY, SUBMISSION_BODY
from kubejudge_api.services import Services
from kubejudge_api.submission_store import Accepted

router = APIRouter(tags=["submissions"])

Base64Query = Annotated[str | None, Query(description="'true' for Base64 text fields")]
FieldsQuery = Annotated[str | None, Query(description="comma-separated attributes, or *")]
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")
MAX_PAGE = 1_000_000


@router.post("/submissions", status_code=201, openapi_extra=SUBMISSION_BODY)
async def create(
    request: Request,
    services: ServicesDep,
    user: CallerDep,
    base64_encoded: Base64Query = None,
    wait: Annotated[str | None, Query(description="'true' to answer with the verdict")] = None,
    fields: FieldsQuery = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Create a submission; 201 with its token, or with the result when `wait=true`."""
    requested = requested_fields(fields)
    if wait == "true" and not services.settings.enable_wait_result:
        raise error(400, "wait not allowed")
    _check_idempotency_key(idempotency_key, user)
    b64 = base64_encoded == "true"
    new = _parse(services, await _json(request), base64_encoded=b64)
    try:
        accepted = await accept.accept_one(
            services, new=new, user=user, client=_client(request), idempotency_key=idempotency_key
        )
    except InvalidSubmission as invalid:
        raise ApiError(422, invalid.errors) from invalid
    if wait != "true":
        return JSONResponse({"token": accepted.token}, status_code=201)
    result = await accept.waited_result(
        services, accepted.token, fields=requested, base64_encoded=b64
    )
    return JSONResponse(result, status_code=201)


@router.get("/submissions")
async def index(
    request: Request,
    services: ServicesDep,
    user: CallerDep,
    page: str | None = None,
    per_page: str | None = None,
    base64_encoded: Base64Query = None,
    fields: FieldsQuery = None,
) -> dict[str, Any]:
    """Judge0's listing: every submission with a valid X-Auth-User; with a bearer JWT, the
    caller's own; otherwise 403."""
    requested = requested_fields(fields)
    if authorized_user(request, services):
        owner = None
    elif user is not None:
        owner = user.id
    else:
        raise error(403, "authorization failed: missing or wrong X-Auth-User")
    return await list_page(
        services, owner=owner, page=page, per_page=per_page, fields=requested,
        base64_encoded=base64_encoded == "true",
    )  # fmt: skip


@router.post("/submissions/batch", status_code=201, openapi_extra=BATCH_BODY)
async def batch_create(
    request: Request, services: ServicesDep, user: CallerDep, base64_encoded: Base64Query = None
) -> JSONResponse:
    """Create up to 20 submissions; per item a token or its errors, in request order."""
    body = await _json(request)
    items = body.get("submissions") if isinstance(body, dict) else None
    if not isinstance(items, list):
        items = []
    _check_batch_size(len(items), services)
    parsed: list[NewSubmission | InvalidSubmission] = []
    for item in items:
        try:
            parsed.append(
                judge0_request.parse_submission(item, base64_encoded=base64_encoded == "true")
            )
        except InvalidSubmission as invalid:
            services.metrics.rejected("invalid")
            parsed.append(invalid)
    valid = [item for item in parsed if isinstance(item, NewSubmission)]
    outcomes = iter(
        await accept.accept_batch(services, items=valid, user=user, client=_client(request))
    )
    response: list[dict[str, Any]] = []
    for item in parsed:
        outcome = next(outcomes) if isinstance(item, NewSubmission) else item
        if isinstance(outcome, Accepted):
            response.append({"token": outcome.token})
        else:
            response.append(outcome.errors)
    created = any("token" in entry for entry in response)
    return JSONResponse(response, status_code=201 if created else 422)


@router.get("/submissions/batch")
async def batch_show(
    request: Request,
    services: ServicesDep,
    tokens: str | None = None,
    base64_encoded: Base64Query = None,
    fields: FieldsQuery = None,
) -> dict[str, Any]:
    """Up to 20 submissions by token; null for an unknown token."""
    requested = requested_fields(fields)
    raw = request.headers.get("tokens") or tokens or ""
    wanted = [token for token in raw.strip().split(",") if token]
    _check_batch_size(len(wanted), services)
    rows = await submission_store.get_many(services.engine, wanted)
    try:
        return {
            "submissions": [
                render(rows[token], fields=requested, base64_encoded=base64_encoded == "true")
                if token in rows
                else None
                for token in wanted
            ]
        }
    except NotUtf8 as not_utf8:
        raise error(400, NOT_UTF8.replace("this submission", "one or more submissions")) from (
            not_utf8
        )


@router.get("/submissions/{token}")
async def show(
    token: str,
    services: ServicesDep,
    base64_encoded: Base64Query = None,
    fields: FieldsQuery = None,
) -> dict[str, Any]:
    """One submission (default fields: token, time, memory, stdout, stderr, compile_output,
    message, status)."""
    requested = requested_fields(fields)
    row = await submission_store.get(services.engine, token)
    if row is None:
        raise error(404, "Not Found")
    try:
        return render(row, fields=requested, base64_encoded=base64_encoded == "true")
    except NotUtf8 as not_utf8:
        raise error(400, NOT_UTF8) from not_utf8


@router.delete("/submissions/{token}")
async def destroy(token: str, request: Request, services: ServicesDep) -> None:
    """Judge0 keeps deletion off by default (ENABLE_SUBMISSION_DELETE); so do we: the row is
    the system of record, and a judged submission may be re-run by the reconciler."""
    if not authorized_user(request, services):
        raise error(403, "authorization failed: missing or wrong X-Auth-User")
    raise error(400, "delete not allowed")


async def list_page(
    services: Services,
    *,
    owner: str | None,
    page: str | None,
    per_page: str | None,
    fields: tuple[str, ...] | None,
    base64_encoded: bool,
) -> dict[str, Any]:
    """A page of submissions in Judge0's `{submissions, meta}` shape."""
    page_number = _ruby_int(page, default=1)
    size = _ruby_int(per_page, default=20)
    if not 0 < page_number <= MAX_PAGE:
        raise error(400, f"invalid page: {page_number}")
    if not 0 < size <= 100:
        raise error(400, f"invalid per_page: {size}")
    result = await submission_store.page(
        services.engine, owner=owner, page=page_number, per_page=size
    )
    try:
        rendered = [
            render(row, fields=fields, base64_encoded=base64_encoded) for row in result.rows
        ]
    except NotUtf8 as not_utf8:
        raise error(400, NOT_UTF8.replace("this submission", "one or more submissions")) from (
            not_utf8
        )
    return {"submissions": rendered, "meta": result.meta()}


def requested_fields(raw: str | None) -> tuple[str, ...] | None:
    try:
        return parse_fields(raw)
    except InvalidFields as invalid:
        raise error(400, str(invalid)) from invalid


def _client(request: Request) -> str | None:
    """The caller's address (behind trusted proxies, the one they forwarded)."""
    return request.client.host if request.client else None


def _check_idempotency_key(key: str | None, user: auth.User | None) -> None:
    if key is None:
        return
    if user is None:
        raise error(400, "Idempotency-Key needs `Authorization: Bearer <JWT>`")
    if not IDEMPOTENCY_KEY.match(key):
        raise error(400, "Idempotency-Key must be 1 to 128 visible ASCII characters")


def _parse(services: Services, body: Any, *, base64_encoded: bool) -> NewSubmission:
    try:
        return judge0_request.parse_submission(body, base64_encoded=base64_encoded)
    except InvalidSubmission as invalid:
        services.metrics.rejected("invalid")
        raise ApiError(422, invalid.errors) from invalid


async def _json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError) as invalid:
        raise error(400, "the request body is not valid JSON") from invalid


def _check_batch_size(n: int, services: Services) -> None:
    limit = services.settings.max_submission_batch_size
    if n > limit:
        raise error(
            400, f"number of submissions in a batch should be less than or equal to {limit}"
        )
    if n == 0:
        raise error(400, "there should be at least one submission in a batch")


def _ruby_int(text: str | None, *, default: int) -> int:
    """Ruby's String#to_i: leading digits, else 0."""
    if text is None:
        return default
    match = re.match(r"\s*([+-]?\d{1,12})", text)
    return int(match.group(1)) if match else 0
