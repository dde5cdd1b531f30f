"""Accepting submissions: back-pressure, rate limit, commit, enqueue — and `wait=true`.

The row is the truth. It is committed first and enqueued second; if Redis fails in between
the client still gets its 201 and the reconciler enqueues the submission later. Likewise the
queue-size and rate-limit checks fail open when Redis is unreachable.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from redis.exceptions import RedisError

from kubejudge import auth, protocol, queue
from kubejudge.statuses import Status
from kubejudge_api import ratelimit, submission_store
from kubejudge_api.errors import error
from kubejudge_api.judge0_request import InvalidSubmission, NewSubmission
from kubejudge_api.judge0_response import NOT_UTF8, NotUtf8, render
from kubejudge_api.services import Services
from kubejudge_api.submission_store import Accepted, Row

log = logging.getLogger(__name__)


async def admit(
    services: Services,
    *,
    items: Sequence[NewSubmission],
    user: auth.User | None,
    client: str | None,
) -> None:
    """Refuse the whole request with 503 (queue full) or 429 (rate limit), else return."""
    per_pool = Counter(
        services.settings.pool_for_language(item.columns["language_id"]) for item in items
    )
    try:
        for pool, n in per_pool.items():
            if await services.backpressure.full(pool, n):
                services.metrics.rejected("queue_full", len(items))
                raise error(503, "queue is full")
        await _rate_limit(services, n=len(items), user=user, client=client)
    except (RedisError, OSError) as failure:
        log.warning("admission checks skipped, redis unavailable: %s", failure)


async def _rate_limit(
    services: Services, *, n: int, user: auth.User | None, client: str | None
) -> None:
    """Per JWT user; without a JWT, per client address (unless that limit is 0) while the api
    is open: with X-Auth-Token on, the middleware let only the operator's own clients this far."""
    settings = services.settings
    window_s = settings.rate_limit_window_s
    if user is not None:
        limit, whom = settings.rate_limit_submissions, ""
        counter = functools.partial(protocol.rate_limit_counter, user.id)
    elif settings.rate_limit_anonymous_submissions and not settings.auth_token and client:
        limit, whom = settings.rate_limit_anonymous_submissions, " from one address"
        counter = functools.partial(
            protocol.address_rate_limit_counter, ratelimit.client_key(client)
        )
    else:
        return
    refused = await ratelimit.take(
        services.redis, counter=counter, n=n, limit=limit, window_s=window_s
    )
    if refused is not None:
        services.metrics.rejected("rate_limited", n)
        raise error(
            429,
            f"rate limit: at most {limit} submissions per {window_s} s{whom}",
            {"Retry-After": str(refused.retry_after_s)},
        )


async def accept_one(
    services: Services,
    *,
    new: NewSubmission,
    user: auth.User | None,
    client: str | None,
    idempotency_key: str | None,
) -> Accepted:
    await admit(services, items=[new], user=user, client=client)
    try:
        accepted = await submission_store.insert_one(
            services.pg,
            new=new,
            owner=user.id if user else None,
            idempotency_key=idempotency_key,
        )
    except InvalidSubmission:
        services.metrics.rejected("invalid")
        raise
    if accepted.created:
        await enqueue(services, accepted)
        services.metrics.accepted()
    return accepted


async def accept_batch(
    services: Services,
    *,
    items: Sequence[NewSubmission],
    user: auth.User | None,
    client: str | None,
) -> list[Accepted | InvalidSubmission]:
    if items:
        await admit(services, items=items, user=user, client=client)
    results = await submission_store.insert_many(
        services.pg, items=items, owner=user.id if user else None
    )
    for result in results:
        if isinstance(result, Accepted):
            await enqueue(services, result)
            services.metrics.accepted()
        else:
            services.metrics.rejected("invalid")
    return results


async def enqueue(services: Services, accepted: Accepted) -> None:
    pool = services.settings.pool_for_language(accepted.language_id)
    try:
        await queue.enqueue(services.redis, pool=pool, token=accepted.token)
        services.backpressure.enqueued(pool)
    except (RedisError, OSError) as failure:
        log.warning("enqueue of %s deferred to the reconciler: %s", accepted.token, failure)


async def waited_result(
    services: Services, token: str, *, fields: tuple[str, ...] | None, base64_encoded: bool
) -> dict[str, Any]:
    """`wait=true`'s answer: the rendered submission once judged (or at the timeout); Judge0's
    token-plus-error body when its text is not UTF-8 and Base64 was not asked for."""
    row = await wait_for_verdict(services, token)
    if row is None:  # cannot happen while submissions are never deleted
        return {"token": token}
    try:
        return render(row, fields=fields, base64_encoded=base64_encoded)
    except NotUtf8:
        return {"token": token, "error": NOT_UTF8}


async def wait_for_verdict(services: Services, token: str) -> Row | None:
    """The row once it has a final status, or as it is after `wait_timeout_s`."""
    deadline = time.monotonic() + services.settings.wait_timeout_s
    try:
        async with services.waiter.watch(
            token, timeout_s=services.settings.wait_timeout_s
        ) as subscription:
            while True:
                published = subscription.published
                row = await submission_store.get(services.engine, token)
                remaining = deadline - time.monotonic()
                if row is None or Status(row["status_id"]).is_final or remaining <= 0:
                    return row
                await asyncio.wait_for(published.wait(), remaining)
    except (TimeoutError, RedisError, OSError):
        pass  # Judge0 would still be waiting; we answer with the current state instead
    return await submission_store.get(services.engine, token)
