"""Which host paths each language family sees inside the box (read-only), and its environment.

Everything a box sees is listed here: /usr (compilers, interpreters, libraries), with
/usr/local hidden behind an empty tmpfs, plus per-family extras. /etc is not bound; only the
loader cache and the `alternatives` symlinks the Debian toolchains resolve through.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Toolchain:
    binds: tuple[tuple[str, str], ...] = ()  # (host path, box path), read-only
    env: dict[str, str] = field(default_factory=dict)


COMMON_BINDS: tuple[tuple[str, str], ...] = (
    ("/usr", "/usr"),
    ("/etc/alternatives", "/etc/alternatives"),
    ("/etc/ld.so.cache", "/etc/ld.so.cache"),
)
# Debian's merged /usr: these are symlinks on the host and in the box.
USR_SYMLINKS: tuple[tuple[str, str], ...] = (
    ("usr/bin", "/bin"),
    ("usr/lib", "/lib"),
    ("usr/lib64", "/lib64"),
    ("usr/sbin", "/sbin"),
)
# The box's own private, size-capped tmpfs; never the host's /tmp.
BOX_TMP = "/tmp"  # noqa: S108 (boxd mounts it, and /dev/shm, fresh for every run)
BASE_ENV: dict[str, str] = {
    "PATH": "/usr/bin:/bin",
    "HOME": BOX_TMP,
    "TMPDIR": BOX_TMP,
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}


# Go's build cache, warmed with `go build std` by the worker before it judges Go (see
# `prepare_go_cache`) and bound read-only: Go builds what is missing without storing it.
GO_BUILD_CACHE = "/var/cache/kubejudge/go-build"


# rustc: the worker image installs the toolchain in /opt/rust; elsewhere it is staged from
# rustup where the unprivileged box user can reach it (see `stage_rust_toolchain`).
RUST_TOOLCHAIN = (
    "/opt/rust" if Path("/opt/rust/bin/rustc").exists() else "/var/cache/kubejudge/rust-1.95.0"
)


TOOLCHAINS: dict[str, Toolchain] = {
    "c": Toolchain(),
    "cpp": Toolchain(),
    "python": Toolchain(env={"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}),
    "javascript": Toolchain(),
    # Debian's OpenJDK reads its config from /etc; the image's Temurin build lives in /opt/java
    # (with /usr/bin/java pointing there).
    "java": Toolchain(
        binds=(("/etc/java-17-openjdk", "/etc/java-17-openjdk"), ("/opt/java", "/opt/java"))
    ),
    "go": Toolchain(
        binds=(("/usr/local/go", "/usr/local/go"), (GO_BUILD_CACHE, "/opt/go-cache")),
        # The build cache must be writable and private to the box: it lives in /tmp.
        env={
            "PATH": "/usr/local/go/bin:/usr/bin:/bin",
            "GOCACHE": "/opt/go-cache",
            "GOPATH": f"{BOX_TMP}/go",
            "GO111MODULE": "off",
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
            "GOFLAGS": "-buildvcs=false",
        },
    ),
    "rust": Toolchain(binds=((RUST_TOOLCHAIN, "/opt/rust"),)),
}


def prepare_toolchains() -> None:
    """What must exist before a box can start: the Go cache layout and the staged rustc."""
    cache = Path(GO_BUILD_CACHE)
    # Go refuses a cache without its 256 shard dirs and cannot create them read-only; with
    # them, a cold cache still works (Go builds what is missing and stores nothing).
    for shard in range(256):
        (cache / f"{shard:02x}").mkdir(parents=True, exist_ok=True)
    stage_rust_toolchain()


def stage_rust_toolchain() -> None:
    """Make the pinned rustc reachable by the box user, once.

    rustup installs under $RUSTUP_HOME (here /root/.rustup, mode 0700), which bwrap, running
    unprivileged, cannot traverse. Its `bin` and `lib` are hard-linked (copied if on another
    filesystem) into RUST_TOOLCHAIN: same files, same modes, a readable path. A host whose
    rustc already lives there (the worker image) skips this.
    """
    target = Path(RUST_TOOLCHAIN)
    if target.exists():
        return
    home = Path(os.environ.get("RUSTUP_HOME", "/root/.rustup"))
    found = sorted(glob.glob(str(home / "toolchains" / "1.95.0-*")))
    if not found:
        return
    source = Path(found[0]).resolve()
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    partial.mkdir(mode=0o755, parents=True)
    for part in ("bin", "lib"):
        subprocess.run(["cp", "-al", str(source / part), str(partial / part)], check=False)
        if not (partial / part).exists():
            shutil.copytree(source / part, partial / part, symlinks=True)
    try:
        partial.rename(target)
    except OSError:  # another worker staged it first
        shutil.rmtree(partial, ignore_errors=True)


def warm_go_cache() -> None:
    """Fill GO_BUILD_CACHE with the compiled standard library (`go build std`), once.

    Runs our own fixed command on the host, with the box's Go environment so the cache keys
    match. Until it is warm, Go submissions still compile, only slower. Safe to run from
    several workers at once (Go's cache is), and a no-op when the stamp file exists.
    """
    cache = Path(GO_BUILD_CACHE)
    stamp = cache / "kubejudge-warm"
    go = Path("/usr/local/go/bin/go")
    if stamp.exists() or not go.exists():
        return
    cache.mkdir(parents=True, exist_ok=True)
    env = {**BASE_ENV, **TOOLCHAINS["go"].env, "GOCACHE": GO_BUILD_CACHE}
    with tempfile.TemporaryDirectory() as scratch:
        env |= {"HOME": scratch, "TMPDIR": scratch, "GOPATH": scratch}
        done = subprocess.run([str(go), "build", "std"], env=env, capture_output=True, check=False)
    if done.returncode == 0:
        stamp.touch()


def toolchain(family: str) -> Toolchain:
    try:
        return TOOLCHAINS[family]
    except KeyError:
        raise LookupError(f"no sandbox toolchain for language family {family!r}") from None
