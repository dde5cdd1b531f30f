"""Property-based fuzzing from /openapi.json: no generated input makes the api answer 5xx.

The api runs as a real uvicorn process (`kubejudge api`, the `api_url` fixture) over the test
Redis and PostgreSQL; examples per operation are bounded so the module stays well under a
minute.
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from kubejudge import auth
from kubejudge.settings import Settings


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
