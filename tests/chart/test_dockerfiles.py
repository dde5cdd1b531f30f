"""Every role's Dockerfile: hadolint clean, multi-stage, pinned bases, non-root (the worker:
container root on purpose, see below), and the worker carries exactly the toolchain versions the
language table names."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kubejudge.languages import LANGUAGES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "api": REPO / "images" / "api" / "Dockerfile",
    "gateway": REPO / "images" / "gateway" / "Dockerfile",
    "worker": REPO / "images" / "worker" / "Dockerfile",
    "operator": REPO / "operator" / "Dockerfile",
}
HADOLINT = Path(sys.executable).parent / "hadolint"
COMPILERS = ("gcc", "g++", "openjdk", "javac", "rustc", "golang", "nodejs")


@pytest.mark.parametrize("role", DOCKERFILES)
def test_hadolint_is_clean(role: str) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILES[role])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def final_user(text: str) -> str:
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "the image must name its USER"
    return users[-1]


@pytest.mark.parametrize("role", DOCKERFILES)
def test_multi_stage_and_pinned(role: str) -> None:
    text = DOCKERFILES[role].read_text()
    bases = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(bases) >= 2, "expected a build stage and a runtime stage"
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, flags=re.MULTILINE))
    for base in bases:
        if base in stages:
            continue
        reference = base.split("@")[0]
        tag = reference.rpartition(":")[2] if ":" in reference else ""
        assert "@sha256:" in base or re.search(r"\d", tag), f"{base}: pin an exact tag or digest"
        assert tag != "latest", base


@pytest.mark.parametrize("role", ["api", "gateway", "operator"])
def test_non_root(role: str) -> None:
    uid = final_user(DOCKERFILES[role].read_text()).split(":")[0]
    assert uid not in ("0", "root"), "the image must run non-root"
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can verify it"


def test_the_worker_is_container_root_on_purpose() -> None:
    """The worker sets up each box as root in its pod's user namespace (hostUsers: false), so
    its USER is 0, said so with a justified hadolint ignore, and no setuid binary stays."""
    text = DOCKERFILES["worker"].read_text()
    assert final_user(text) == "0:0"
    before_user = text[: text.rindex("\nUSER ")]
    assert before_user.rstrip().endswith("# hadolint ignore=DL3002")
    comment = re.findall(r"^# .*$", before_user, flags=re.MULTILINE)[-6:]
    assert any("hostUsers: false" in line for line in comment), "say why root is acceptable"
    runtime = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"find / -xdev -type f -perm /6000 -exec chmod ug-s", runtime)


@pytest.mark.parametrize("role", ["api", "gateway", "operator"])
def test_only_the_worker_carries_compilers(role: str) -> None:
    runtime = DOCKERFILES[role].read_text().rsplit("\nFROM ", 1)[1]
    assert not [c for c in COMPILERS if re.search(rf"\b{re.escape(c)}\b", runtime)]


def test_worker_toolchains_match_the_language_table() -> None:
    text = DOCKERFILES["worker"].read_text()
    names = {language.family: language.name for language in LANGUAGES.values()}
    pins = {
        "c": r"gcc-12=12\.2\.0-",
        "cpp": r"g\+\+-12=12\.2\.0-",
        "python": r"python3\.11=3\.11\.2-",
        "java": r"eclipse-temurin:17\.0\.15_",
        "javascript": r"node:20\.20\.2-",
        "go": r"golang:1\.26\.8-",
        "rust": r"rust:1\.95\.0-",
    }
    assert set(pins) == set(names), "a language family without a toolchain check"
    for family, pin in pins.items():
        version = re.search(r"\d+\.\d+\.\d+", pin.replace("\\", "")).group(0)
        assert version in names[family], f"{family}: languages.py names {names[family]!r}"
        assert re.search(pin, text), f"{family}: the worker image does not pin {version}"
    assert re.search(r"\bbubblewrap=", text), "the worker needs bubblewrap"


def test_the_images_wheel_carries_every_data_file_of_our_packages() -> None:
    """The images install the project as a wheel: a file of a package that no package-data
    pattern names (the sandbox's C helper, the page's assets) would be missing in the image."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["*"]
    roots = [
        REPO / "kubejudge",
        *REPO.glob("images/*/kubejudge_*"),
        *REPO.glob("operator/kubejudge_*"),
    ]
    missing = [
        str(path.relative_to(REPO))
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".py"
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
    ]
    assert not missing, f"add to [tool.setuptools.package-data] in pyproject.toml: {missing}"
