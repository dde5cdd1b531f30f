"""Each language's name states the version that really runs in the sandbox."""

from __future__ import annotations

import re

import pytest
from kubejudge_worker.sandbox import Sandbox
from sandbox_support import COMPILE_LIMITS

from kubejudge.languages import LANGUAGES, Language

VERSION_COMMANDS: dict[str, list[str]] = {
    "c": ["/usr/bin/gcc", "--version"],
    "cpp": ["/usr/bin/g++", "--version"],
    "python": ["/usr/bin/python3", "--version"],
    "javascript": ["/usr/bin/node", "--version"],
    "java": ["/usr/bin/java", "-version"],
    "go": ["/usr/local/go/bin/go", "version"],
    "rust": ["/opt/rust/bin/rustc", "--version"],
}


@pytest.mark.parametrize("language", LANGUAGES.values(), ids=lambda language: str(language.id))
def test_the_name_states_the_installed_version(sandbox: Sandbox, language: Language) -> None:
    match = re.search(r"\(.*?(\d+(?:\.\d+)+)\)$", language.name)
    assert match, f"{language.name!r} states no version"
    with sandbox.box(family=language.family) as box:
        result = box.run(VERSION_COMMANDS[language.family], stdin=b"", limits=COMPILE_LIMITS)
    assert result.succeeded, result.stderr
    reported = (result.stdout + result.stderr).decode()
    assert re.search(rf"(?<![\d.]){re.escape(match.group(1))}(?![\d.])", reported), reported
