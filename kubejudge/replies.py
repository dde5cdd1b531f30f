"""Redis replies as text: they are bytes from a client that does not decode responses (the
worker's and the gateway's) and str from one that does, and every reader here takes both."""

from __future__ import annotations


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
