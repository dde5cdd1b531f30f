"""Which pages may open a socket (cross-site WebSocket hijacking), as a pure decision."""

from __future__ import annotations

import pytest
from kubejudge_gateway.origins import allowed


@pytest.mark.parametrize(
    ("origin", "host", "expected"),
    [
        (None, "judge.example:2359", True),  # not a browser: no ambient credentials to ride on
        ("http://judge.example:2358", "judge.example:2359", True),  # the dev page, api port
        ("https://judge.example", "judge.example", True),
        ("http://127.0.0.1:2358", "127.0.0.1:2359", True),
        ("http://evil.example", "judge.example:2359", False),
        ("http://judge.example.evil.example", "judge.example:2359", False),
        ("null", "judge.example:2359", False),  # sandboxed iframes, file:// pages
        ("http://[::1", "judge.example:2359", False),  # malformed
        ("http://judge.example", None, False),
    ],
)
def test_without_an_allow_list_only_the_gateways_own_host_is_admitted(
    origin: str | None, host: str | None, expected: bool
) -> None:
    assert allowed(origin, host=host, allow_list=[]) is expected


def test_an_allow_list_is_matched_exactly() -> None:
    allow_list = ["https://judge.example/", "https://admin.judge.example"]
    assert allowed("https://judge.example", host="ws.judge.example", allow_list=allow_list)
    assert allowed("https://admin.judge.example", host="x", allow_list=allow_list)
    assert not allowed("http://judge.example", host="judge.example", allow_list=allow_list)
    assert allowed("http://anything.example", host="x", allow_list=["*"])
