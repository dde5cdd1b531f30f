"""Judge0 CE 1.13.1's rules for a new submission: the fields it takes, their defaults, their
limits, and its exact validation messages (Rails' wording, `{"field": ["message", ...]}`).

Where Judge0 would let something dangerous through we refuse it with a 422 in the same shape
and say so in `/config_info`: callbacks (an SSRF vector from the workers), network access,
additional files, and the per-process limit switches our sandbox does not implement.
"""

from __future__ import annotations

import binascii
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubejudge.languages import LANGUAGES, compiler_options

MAX_TEXT_OPTION = 512  # compiler_options and command_line_arguments

# Judge0's defaults and limits (judge0.conf, app/helpers/config.rb, app/models/submission.rb).
# Decimals are seconds: name -> (default, min, max). Integers are kilobytes or counts:
# name -> (default, min, max, whether min itself is allowed).
DECIMAL_LIMITS: dict[str, tuple[Decimal, Decimal, Decimal]] = {
    "cpu_time_limit": (Decimal(5), Decimal(0), Decimal(15)),
    "cpu_extra_time": (Decimal(1), Decimal(0), Decimal(5)),
    "wall_time_limit": (Decimal(10), Decimal(1), Decimal(20)),
}
INTEGER_LIMITS: dict[str, tuple[int, int, int, bool]] = {
    "memory_limit": (128_000, 2048, 512_000, True),
    "stack_limit": (64_000, 0, 128_000, True),
    "max_processes_and_or_threads": (60, 0, 120, False),
    "max_file_size": (1024, 0, 4096, True),
    "number_of_runs": (1, 0, 20, False),
}
BOOLEAN_DEFAULTS: dict[str, bool] = {
    "enable_per_process_and_thread_time_limit": False,
    "enable_per_process_and_thread_memory_limit": False,
    "redirect_stderr_to_stdout": False,
    "enable_network": False,
}
TEXT_FIELDS = ("source_code", "stdin", "expected_output")  # base64 when base64_encoded=true

# Switches Judge0 has and we keep off; the message is Judge0's own for each.
REFUSED: dict[str, str] = {
    "enable_per_process_and_thread_time_limit": "this option cannot be enabled",
    "enable_per_process_and_thread_memory_limit": "this option cannot be enabled",
    "enable_network": "enabling network is not allowed",
    "callback_url": "setting callback is not allowed",
    "additional_files": "setting additional files is not allowed",
}

Errors = dict[str, list[str]]

# The `submissions` columns a validated request fills, in a fixed order.
COLUMNS = (
    *TEXT_FIELDS, "language_id", "compiler_options", "command_line_arguments",
    *DECIMAL_LIMITS, *INTEGER_LIMITS, *BOOLEAN_DEFAULTS, "callback_url", "additional_files",
)  # fmt: skip


class InvalidSubmission(Exception):
    """The request failed validation; `errors` is Judge0's 422 body."""

    def __init__(self, errors: Errors) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass(frozen=True, slots=True)
class NewSubmission:
    """A validated request: column values for the `submissions` row, defaults applied."""

    columns: dict[str, Any]
    problem_id: int | None


def decode64(text: str) -> bytes:
    """Base64 as Ruby's `Base64.decode64` reads it: line breaks and padding are optional."""
    compact = "".join(text.split())
    return binascii.a2b_base64(compact + "=" * (-len(compact) % 4), strict_mode=False)


def parse_submission(body: Any, *, base64_encoded: bool) -> NewSubmission:
    """Validate one submission object as Judge0 would; raises `InvalidSubmission`."""
    if not isinstance(body, dict):
        raise InvalidSubmission({"submission": ["must be a JSON object"]})
    errors: Errors = {}
    columns: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        columns[name] = _text(body.get(name), name, errors, base64_encoded=base64_encoded)
    source = columns["source_code"]
    if source is None or not source.strip():
        errors.setdefault("source_code", []).append("can't be blank")

    language_id = _language(body.get("language_id"), errors)
    columns["language_id"] = language_id
    for name in ("compiler_options", "command_line_arguments"):
        columns[name] = _option(body.get(name), name, errors)
    language = LANGUAGES.get(language_id) if language_id is not None else None
    if columns["compiler_options"] and language is not None:
        try:
            compiler_options(language, columns["compiler_options"])
        except ValueError as error:
            errors.setdefault("compiler_options", []).append(str(error))
    for name, (default, low, high) in DECIMAL_LIMITS.items():
        columns[name] = _decimal(body.get(name), name, errors, default=default, low=low, high=high)
    for name, (default_int, low_int, high_int, inclusive) in INTEGER_LIMITS.items():
        columns[name] = _integer(
            body.get(name), name, errors, default=default_int, bounds=(low_int, high_int, inclusive)
        )
    for name, default_flag in BOOLEAN_DEFAULTS.items():
        columns[name] = _boolean(body.get(name), name, errors, default=default_flag)
    for name, message in REFUSED.items():
        if body.get(name) not in (None, False, ""):
            errors.setdefault(name, []).append(message)
    columns["callback_url"] = None
    columns["additional_files"] = None
    problem_id = _problem_id(body.get("problem_id"), errors)
    if errors:
        raise InvalidSubmission(errors)
    return NewSubmission(columns=columns, problem_id=problem_id)


def _text(value: Any, name: str, errors: Errors, *, base64_encoded: bool) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.setdefault(name, []).append("must be a string")
        return None
    if base64_encoded:
        try:
            return decode64(value)
        except (binascii.Error, ValueError):
            errors.setdefault(name, []).append("is not valid Base64")
            return None
    try:
        return value.encode()
    except UnicodeEncodeError:
        errors.setdefault(name, []).append("is not valid UTF-8, use base64_encoded=true")
        return None


def _language(value: Any, errors: Errors) -> int | None:
    number = _as_number(value)
    if value is None or value == "":
        errors["language_id"] = ["can't be blank", "language with id  doesn't exist"]
        return None
    if number is None or number != int(number):
        errors["language_id"] = [f"language with id {value} doesn't exist"]
        return None
    if int(number) not in LANGUAGES:
        errors["language_id"] = [f"language with id {int(number)} doesn't exist"]
        return None
    return int(number)


def _option(value: Any, name: str, errors: Errors) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        errors.setdefault(name, []).append("must be a string")
        return None
    if not _storable(value):
        errors.setdefault(name, []).append("must be UTF-8 text without NUL characters")
        return None
    if len(value) > MAX_TEXT_OPTION:
        errors.setdefault(name, []).append(f"is too long (maximum is {MAX_TEXT_OPTION} characters)")
    return value or None


def _decimal(
    value: Any, name: str, errors: Errors, *, default: Decimal, low: Decimal, high: Decimal
) -> Decimal:
    number = _given_number(value, name, errors)
    if number is None:
        return default
    if number < low:
        errors.setdefault(name, []).append(f"must be greater than or equal to {int(low)}")
    elif number > high:
        errors.setdefault(name, []).append(f"must be less than or equal to {_ruby(high)}")
    return Decimal(str(number)).quantize(Decimal("0.001")) if low <= number <= high else default


def _integer(
    value: Any, name: str, errors: Errors, *, default: int, bounds: tuple[int, int, bool]
) -> int:
    low, high, inclusive = bounds
    number = _given_number(value, name, errors)
    if number is None:
        return default
    if inclusive and number < low:
        errors.setdefault(name, []).append(f"must be greater than or equal to {low}")
    elif not inclusive and number <= low:
        errors.setdefault(name, []).append(f"must be greater than {low}")
    elif number > high:
        errors.setdefault(name, []).append(f"must be less than or equal to {high}")
    else:
        return int(number)  # Rails truncates a fraction into an integer column
    return default


def _boolean(value: Any, name: str, errors: Errors, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "1", 1):
        return True
    if value in ("false", "0", 0):
        return False
    errors.setdefault(name, []).append("is not a boolean")
    return default


def _problem_id(value: Any, errors: Errors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        errors["problem_id"] = ["must be a positive integer"]
        return None
    return value


def _given_number(value: Any, name: str, errors: Errors) -> float | int | None:
    """The number a limit was given; None when it was left out, or is not a number (an error)."""
    if value is None or value == "":
        return None
    number = _as_number(value)
    if number is None:
        errors.setdefault(name, []).append("is not a number")
    return number


def _as_number(value: Any) -> float | int | None:
    """A finite number from a JSON number or numeric string, as Rails' numericality reads it."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _ruby(value: Decimal) -> str:
    """Rails prints a Float limit as Ruby does: 15.0, 0.5."""
    return str(float(value))


def _storable(text: str) -> bool:
    """PostgreSQL text holds no NUL, and lone surrogates are not UTF-8."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
