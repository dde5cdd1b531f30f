"""How Judge0 CE 1.13.1 renders a submission: which fields, in what encoding and format.

Byte-compatible details clients rely on: decimals as strings ("0.282", "5.0"), times like
"2024-04-03T05:40:51.306Z", Ruby's MIME-style Base64 (a newline every 60 characters), and a
400 when `base64_encoded=false` meets output that is not UTF-8.

Our extensions (`problem_id`, `tests`, `memory_limit_exceeded`) are never part of `*` or the
default set of a plain submission, because the official SDK sets every returned key on a strict
model; they appear when named in `fields`, and by default on problem submissions, which only
our own clients create.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from kubejudge.languages import LANGUAGES
from kubejudge.statuses import Status

DEFAULT_FIELDS = ("token", "time", "memory", "stdout", "stderr", "compile_output", "message",
                  "status")  # fmt: skip
ALL_FIELDS = (
    "source_code", "language_id", "stdin", "expected_output", "stdout", "status_id",
    "created_at", "finished_at", "time", "memory", "stderr", "token", "number_of_runs",
    "cpu_time_limit", "cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit",
    "max_processes_and_or_threads", "enable_per_process_and_thread_time_limit",
    "enable_per_process_and_thread_memory_limit", "max_file_size", "compile_output",
    "exit_code", "exit_signal", "message", "wall_time", "compiler_options",
    "command_line_arguments", "redirect_stderr_to_stdout", "callback_url", "additional_files",
    "enable_network", "status", "language",
)  # fmt: skip
EXTENSION_FIELDS = ("problem_id", "tests", "memory_limit_exceeded")
KNOWN_FIELDS = frozenset(ALL_FIELDS) | frozenset(EXTENSION_FIELDS)

ENCODED = frozenset({"source_code", "stdin", "expected_output", "stdout", "stderr",
                     "compile_output", "message"})  # fmt: skip
DECIMALS = frozenset({"time", "wall_time", "cpu_time_limit", "cpu_extra_time", "wall_time_limit"})
# Per-test keys anyone may see; a test's input, expected and actual output never leave (and a
# hidden test has null figures: the worker keeps nothing the program chose but its verdict).
TEST_KEYS = ("test", "hidden", "status", "time", "wall_time", "memory", "memory_limit_exceeded",
             "exit_code", "exit_signal", "message")  # fmt: skip

NOT_UTF8 = (
    "some attributes for this submission cannot be converted to UTF-8, "
    "use base64_encoded=true query parameter"
)


class InvalidFields(Exception):
    """`fields` names attributes that do not exist; str() is Judge0's 400 message."""


class NotUtf8(Exception):
    """An attribute is not UTF-8 and the client did not ask for Base64."""


def parse_fields(raw: str | None) -> tuple[str, ...] | None:
    """The requested fields, `ALL_FIELDS` for `*`, or None for the default set."""
    names = [name.strip() for name in (raw or "").split(",") if name.strip()]
    if not names:
        return None
    if "*" in names:
        return ALL_FIELDS
    invalid = [name for name in names if name not in KNOWN_FIELDS]
    if invalid:
        raise InvalidFields(f"invalid fields: [{', '.join(invalid)}]")
    return tuple(dict.fromkeys(names))


def encode64(data: bytes) -> str:
    """Ruby's `Base64.encode64`: a newline after every 60 characters and at the end."""
    return "".join(
        binascii.b2a_base64(data[start : start + 45]).decode() for start in range(0, len(data), 45)
    )


def render(
    row: Mapping[str, Any], *, fields: tuple[str, ...] | None, base64_encoded: bool
) -> dict[str, Any]:
    """One submission as Judge0 would serialise it; raises `NotUtf8`."""
    names = list(fields or DEFAULT_FIELDS)
    if row["problem_id"] is not None and (fields is None or fields is ALL_FIELDS):
        names.extend(EXTENSION_FIELDS)
    return {name: _value(row, name, base64_encoded=base64_encoded) for name in names}


def format_decimal(value: Decimal | None) -> str | None:
    """Ruby's BigDecimal#to_s as Rails renders it: 5 -> "5.0", 0.2820 -> "0.282"."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if "." in text else f"{text}.0"


def format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    moment = value.astimezone(UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


def _value(row: Mapping[str, Any], name: str, *, base64_encoded: bool) -> Any:
    if name == "status":
        return Status(row["status_id"]).public()
    if name == "language":
        language = LANGUAGES.get(row["language_id"])
        return language.public() if language else None
    if name == "tests":
        return _tests(row["test_results"])
    if name == "additional_files":
        data = row["additional_files"]
        return None if data is None else encode64(data)
    value = row[name]
    if name in DECIMALS:
        return format_decimal(value)
    if name in ("created_at", "finished_at"):
        return format_time(value)
    if name in ENCODED and value is not None:
        data = value.encode() if isinstance(value, str) else value
        if base64_encoded:
            return encode64(data)
        try:
            return data.decode()
        except UnicodeDecodeError as error:
            raise NotUtf8(name) from error
    return value


def _tests(results: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if results is None:
        return None
    return [{key: result[key] for key in TEST_KEYS if key in result} for result in results]
