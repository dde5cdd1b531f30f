"""Property-based fuzzing from /openapi.json: no generated input makes the api answer 5xx.

The api runs as a real uvicorn process (`kubejudge api`) over the test Redis and PostgreSQL;
examples per operation are bounded so the whole module stays well under a minute.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from kubejudge import auth, localservices
from kubejudge.settings import Settings


@pytest.fixture(scope="module")
def api_url(settings: Settings) -> Iterator[str]:
    port = localservices.free_port()
    env = dict(
        os.environ,
        KUBEJUDGE_REDIS_URL=settings.redis_url,
        KUBEJUDGE_DATABASE_URL=settings.database_url,
        KUBEJUDGE_JWT_SECRET=settings.jwt_secret,
        KUBEJUDGE_MIGRATE_ON_START="false",
        KUBEJUDGE_DEV_TOKENS="true",
        KUBEJUDGE_WAIT_TIMEOUT_S="0.2",
        KUBEJUDGE_LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "kubejudge.cli", "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the api did not become ready within 30 s")
    yield url
    process.terminate()
    process.wait(timeout=15)


def test_no_input_makes_the_api_fail(api_url: str, settings: Settings) -> None:
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json")
    # Half the operations need a signed-in (admin) user to get past 401/403 into the handler.
    token = auth.issue(secret=settings.jwt_secret, user_id="fuzzer", admin=True)
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for operation, mode in itertools.product(operations, modes):

        @given(case=operation.as_strategy(mode))
        @hypothesis_settings(
            max_examples=10,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=api_url, headers=headers, checks=[not_a_server_error], timeout=10
            )

        try:
            call()
        except Unsatisfiable:
            # Nothing to make invalid (no parameters, no body): the positive run covered it.
            assert mode is schemathesis.GenerationMode.NEGATIVE
