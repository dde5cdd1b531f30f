"""Build (once per source version) and locate the box server, boxd (see boxd.c)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("boxd.c")


def ensure_boxd(cache_dir: Path, *, compiler: str = "/usr/bin/gcc") -> Path:
    """The compiled server in `cache_dir`, compiled now if this source version is not there.

    Named by the source's hash, written to a temporary name and renamed into place, so
    workers starting together never run a half-written binary.
    """
    source = SOURCE.read_bytes()
    target = cache_dir / f"boxd-{hashlib.sha256(source).hexdigest()[:16]}"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    cache_dir.chmod(0o755)
    partial = cache_dir / f".{target.name}.{os.getpid()}"
    subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(partial), str(SOURCE)],
        check=True,
        capture_output=True,
    )
    os.chmod(partial, 0o755)  # noqa: S103 (the box user must execute it)
    os.replace(partial, target)
    return target
