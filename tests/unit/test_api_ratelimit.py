from __future__ import annotations

import pytest
from kubejudge_api.ratelimit import client_key


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7"),  # a dual-stack socket's IPv4 peer
        ("2001:db8:0:1::1", "2001:db8:0:1::/64"),
        ("2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8:0:1::/64"),
        ("unix-socket-peer", "unix-socket-peer"),
    ],
)
def test_an_anonymous_caller_is_counted_per_ipv4_address_or_ipv6_subscriber(
    host: str, key: str
) -> None:
    assert client_key(host) == key
