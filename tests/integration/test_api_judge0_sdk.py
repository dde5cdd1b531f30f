"""The official Judge0 Python SDK (judge0==0.0.8), unchanged, against a real `kubejudge api`.

The SDK reads /about's version to pick its language-id table, parses /config_info with a
strict model, sends Base64, polls with `fields=*` and sets every returned key on a strict
model; any deviation in those breaks it. A worker is simulated by writing the verdict row.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import judge0
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncEngine

from kubejudge.db.models import Submission


async def _judge(engine: AsyncEngine, token: str, stdout: bytes) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(Submission)
            .where(Submission.token == token)
            .values(status_id=3, stdout=stdout, time=Decimal("0.012"), memory=3300,
                    exit_code=0, finished_at=func.now())
        )  # fmt: skip


async def test_the_official_sdk_works_unchanged(api_url: str, engine: AsyncEngine) -> None:
    client = await asyncio.to_thread(judge0.Client, api_url)
    assert client.version == "1.13.1"
    assert client.config.max_submission_batch_size == 20
    assert client.get_language_id(judge0.PYTHON) == 71

    submission = judge0.Submission(source_code="print('héllo')", language=judge0.PYTHON)
    await asyncio.to_thread(client.create_submission, submission)
    assert submission.token is not None
    await _judge(engine, str(submission.token), "héllo\n".encode())
    await asyncio.to_thread(client.get_submission, submission)
    assert submission.status == judge0.Status.ACCEPTED
    assert submission.stdout == "héllo\n" and submission.time == 0.012
    assert submission.source_code == "print('héllo')"
    assert submission.created_at is not None and submission.finished_at is not None

    batch = [judge0.Submission(source_code=f"print({n})", language=judge0.C) for n in range(3)]
    await asyncio.to_thread(client.create_submissions, batch)
    for n, item in enumerate(batch):
        await _judge(engine, str(item.token), f"{n}\n".encode())
    await asyncio.to_thread(client.get_submissions, batch)
    assert [item.stdout for item in batch] == ["0\n", "1\n", "2\n"]
