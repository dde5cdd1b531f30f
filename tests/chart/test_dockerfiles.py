"""images/Dockerfile, one target per image: hadolint clean, multi-stage, pinned bases, non-root
(the worker: container root on purpose, see below), the worker carries exactly the toolchain
versions the language table names, and the managed stores match the operator's defaults."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from kubejudge_operator.resources import stores

from kubejudge.languages import LANGUAGES

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "images" / "Dockerfile"
TEXT = DOCKERFILE.read_text()
ROLES = ("api", "gateway", "operator", "worker")
STORES = {"redis": stores.REDIS_UID, "postgres": stores.POSTGRES_UID}
# Each distribution an image installs, by its pyproject.toml's folder.
DISTRIBUTIONS = (
    REPO,
    REPO / "images/api",
    REPO / "images/gateway",
    REPO / "images/worker",
    REPO / "operator",
)
HADOLINT = Path(sys.executable).parent / "hadolint"
COMPILERS = ("gcc", "g++", "openjdk", "javac", "rustc", "golang", "nodejs")
FROM = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?\s*$", flags=re.MULTILINE)


def _stages() -> dict[str, tuple[str, str]]:
    """Each named stage: (its base, its text), the comment block just above its FROM included."""
    lines = TEXT.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if FROM.match(line)]
    stages = {}
    for n, start in enumerate(starts):
        first = start
        while first > 0 and lines[first - 1].startswith("#"):
            first -= 1
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        while end > start + 1 and lines[end - 1].startswith("#"):
            end -= 1
        base, name = FROM.match(lines[start]).groups()
        if name:
            stages[name] = (base, "".join(lines[first:end]))
    return stages


STAGES = _stages()
ARGS = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", TEXT.split("\nFROM ", 1)[0], flags=re.MULTILINE))


def image_text(target: str) -> str:
    """What ends up in the target's image: its stage and the stages it is built FROM."""
    parts = []
    while target in STAGES:
        base, text = STAGES[target]
        parts.append(text)
        target = base
    return "".join(reversed(parts))


def final_user(text: str) -> str:
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users, "the image must name its USER"
    return users[-1]


def test_hadolint_is_clean() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_base_is_pinned() -> None:
    for base, _name in FROM.findall(TEXT):
        if base in STAGES:
            continue
        variable = re.fullmatch(r"\$\{(\w+)\}", base)
        reference = ARGS[variable.group(1)] if variable else base
        tag = reference.split("@")[0].rpartition(":")[2] if ":" in reference else ""
        assert "@sha256:" in reference or re.search(r"\d", tag), f"{base}: pin a tag or digest"
        assert tag != "latest", base


@pytest.mark.parametrize("role", ROLES)
def test_multi_stage(role: str) -> None:
    """Each role's image copies its venv from a stage of its own, which adds the role's own
    distribution, copied from its folder alone, to the core's venv: no other role's code or
    dependencies, and a change to one role rebuilds only its stage."""
    venv = f"{role}-venv"
    assert re.search(
        rf"^COPY --from={venv} /opt/kubejudge /opt/kubejudge$", STAGES[role][1], flags=re.MULTILINE
    )
    base, text = STAGES[venv]
    assert base == "core"
    folder = "operator" if role == "operator" else f"images/{role}"
    assert re.findall(r"^COPY .*$", text, flags=re.MULTILINE) == [f"COPY {folder} ./{folder}"]
    assert re.findall(r"pip install [^\n]*", text) == [f"pip install --no-cache-dir ./{folder} \\"]
    core = STAGES["core"][1]
    assert re.findall(r"^COPY .*$", core, flags=re.MULTILINE) == [
        "COPY pyproject.toml ./",
        "COPY kubejudge ./kubejudge",
    ], "the core only"
    assert re.findall(r"pip install [^\n]*", core) == ["pip install --no-cache-dir ./"]


@pytest.mark.parametrize("role", ["api", "gateway", "operator", *STORES])
def test_non_root(role: str) -> None:
    uid = final_user(image_text(role)).split(":")[0]
    assert uid not in ("0", "root"), "the image must run non-root"
    assert uid.isdigit(), "a numeric uid, so runAsNonRoot can verify it"


def test_the_worker_is_container_root_on_purpose() -> None:
    """The worker sets up each box as root in its pod's user namespace (hostUsers: false), so
    its USER is 0, said so with a justified hadolint ignore, and no setuid binary stays."""
    text = image_text("worker")
    assert final_user(text) == "0:0"
    before_user = text[: text.rindex("\nUSER ")]
    assert before_user.rstrip().endswith("# hadolint ignore=DL3002")
    comment = re.findall(r"^# .*$", before_user, flags=re.MULTILINE)[-6:]
    assert any("hostUsers: false" in line for line in comment), "say why root is acceptable"
    assert re.search(r"find / -xdev -type f -perm /6000 -exec chmod ug-s", STAGES["worker"][1])


@pytest.mark.parametrize("role", ["api", "gateway", "operator"])
def test_only_the_worker_carries_compilers(role: str) -> None:
    runtime = image_text(role)
    assert not [c for c in COMPILERS if re.search(rf"\b{re.escape(c)}\b", runtime)]


def test_worker_toolchains_match_the_language_table() -> None:
    text = image_text("worker") + "".join(f"{k}={v}\n" for k, v in ARGS.items())
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
    for stage in ("go", "node", "java", "rust"):
        assert re.search(rf"^COPY --from={stage} ", STAGES["worker"][1], flags=re.MULTILINE)


@pytest.mark.parametrize(
    ("store", "default", "package"),
    [
        ("redis", stores.DEFAULT_REDIS_IMAGE, "redis-server"),
        ("postgres", stores.DEFAULT_POSTGRES_IMAGE, "postgresql-15"),
    ],
)
def test_store_images_are_the_operators_defaults(store: str, default: str, package: str) -> None:
    """The operator's default names our own image, tagged with the version its package pins,
    and runs it as the uid the image's user has."""
    repository, _, tag = default.partition(":")
    assert repository == f"kubejudge/{store}"
    pin = re.search(rf"\b{re.escape(package)}=(?:\d+:)?([\d.]+)[-~]", STAGES[store][1])
    assert pin, f"the {store} image must pin {package}"
    assert tag == pin.group(1), f"{default} but the image installs {package} {pin.group(1)}"
    uid = STORES[store]
    assert final_user(STAGES[store][1]) == f"{uid}:{uid}"
    assert re.search(rf"useradd --system --uid {uid} --gid {uid}", STAGES[store][1])


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda f: str(f.relative_to(REPO)) or ".")
def test_each_wheel_carries_every_data_file_of_its_packages(folder: Path) -> None:
    """The images install each distribution as a wheel: a file of a package that no
    package-data pattern names (the sandbox's C helper, the page's assets) would be missing."""
    config = tomllib.loads((folder / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = config.get("package-data", {}).get("*", [])
    roots = [
        folder / name.removesuffix(".*")
        for name in config["packages"]["find"]["include"]
        if not name.endswith(".*")
    ]
    assert roots and all(root.is_dir() for root in roots), roots
    missing = [
        str(path.relative_to(REPO))
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".py"
        and not any(fnmatch.fnmatch(path.name, pattern) for pattern in patterns)
    ]
    assert not missing, f"add to [tool.setuptools.package-data] in its pyproject.toml: {missing}"
