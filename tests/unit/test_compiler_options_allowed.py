"""compiler_options: only an allow-list per language reaches the compiler; the api answers
anything else with Judge0's 422 body, `{"compiler_options": [message]}`."""

from __future__ import annotations

import pytest
from kubejudge_api.judge0_request import InvalidSubmission, parse_submission

from kubejudge.languages import LANGUAGES, compiler_options

C, JAVA, RUST, GO = 50, 62, 73, 60

# Each of these runs a program or reads a file of the caller's choosing.
REFUSED = [
    (C, "-wrapper /bin/sh,-c,id"),
    (C, "-fplugin=/box/evil.so"),
    (C, "-B/box/"),
    (C, "-specs=/box/evil.specs"),
    (C, "@/box/options"),
    (C, "-Wl,-plugin=/box/evil.so"),
    (C, "-Wp,-imacros,/etc/shadow"),
    (C, "-include /etc/shadow"),
    (C, "-DX=1 -save-temps"),
    (JAVA, "-J-javaagent:/box/a.jar"),
    (JAVA, "-processorpath /box"),
    (JAVA, "@/box/argfile"),
    (RUST, "-C linker=/bin/sh"),
    (RUST, "-Clink-arg=-fuse-ld=/box/ld"),
    (RUST, "-Z unstable-options"),
    (GO, "-toolexec=/bin/sh"),
    (GO, "-ldflags=-extld=/bin/sh"),
]
ALLOWED = [
    (C, "-O3 -std=c11 -Wall -Wextra -Wno-unused-result -DVALUE=42 -lm"),
    (54, "-std=c++17 -O2 -pedantic -g"),
    (JAVA, "-Xlint:all -source 17 -encoding UTF-8"),
    (RUST, "--edition 2021 -C opt-level=3 -Awarnings"),
    (GO, "-trimpath"),
]


def submission(language_id: int, options: str) -> dict[str, object]:
    return {"source_code": "x", "language_id": language_id, "compiler_options": options}


@pytest.mark.parametrize(("language_id", "options"), REFUSED)
def test_options_that_run_programs_are_a_422(language_id: int, options: str) -> None:
    with pytest.raises(InvalidSubmission) as raised:
        parse_submission(submission(language_id, options), base64_encoded=False)
    assert list(raised.value.errors) == ["compiler_options"]
    assert raised.value.errors["compiler_options"][0].startswith("compiler option not allowed")
    with pytest.raises(ValueError, match="not allowed"):
        compiler_options(LANGUAGES[language_id], options)


@pytest.mark.parametrize(("language_id", "options"), ALLOWED)
def test_a_judges_options_are_accepted(language_id: int, options: str) -> None:
    parse_submission(submission(language_id, options), base64_encoded=False)
    assert compiler_options(LANGUAGES[language_id], options) == options.split()


def test_interpreted_languages_keep_judge0s_message() -> None:
    with pytest.raises(InvalidSubmission) as raised:
        parse_submission(submission(71, "-O2"), base64_encoded=False)
    assert raised.value.errors == {
        "compiler_options": ["setting compiler options is only allowed for compiled languages"]
    }
