"""The bubblewrap command line for one run: a pure function of its inputs (unit-tested).

bwrap starts as an unprivileged host uid (setpriv drops it there), so the box is that uid to
the kernel. The box gets new user, pid, ipc, uts, net and (where the kernel allows) cgroup
namespaces, runs as uid/gid 65534 inside with no capabilities and no way to make further user
namespaces, dies with the worker, and sits in its own session (no TIOCSTI into our tty).
Its root is a read-only tmpfs holding only read-only toolchain binds, a private /proc, a
minimal /dev, the submission's work dir at /box, and size-capped /tmp and /dev/shm. The
environment is built from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubejudge_worker.sandbox.toolchains import (
    BASE_ENV,
    BOX_SHM,
    BOX_TMP,
    COMMON_BINDS,
    USR_SYMLINKS,
    Toolchain,
)

BOX_UID = 65534  # "nobody" inside the box
BOX_DIR = "/box"
BOXINIT_PATH = "/.boxinit"
REPORT_FD = 3
INFO_FD = 4  # bwrap tells us the box's first pid here...
BLOCK_FD = 5  # ...and waits on this until we have put it in its memory cgroup


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxSpec:
    bwrap: str  # absolute path of the bwrap binary
    setpriv: str  # absolute path of setpriv, which drops to `host_uid` before bwrap starts
    host_uid: int
    boxinit: str  # host path of the compiled boxinit helper
    work_dir: str  # host path of the submission's work dir (a size-capped tmpfs)
    writable: bool  # compile writes its output into /box; test runs get it read-only
    toolchain: Toolchain
    scratch_bytes: int  # size of /tmp and of /dev/shm


def bwrap_argv(spec: BoxSpec, command: list[str]) -> list[str]:
    uid = str(spec.host_uid)
    argv = [
        spec.setpriv,
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        # bwrap's --die-with-parent guards only the box; this guards bwrap itself, which
        # otherwise waits forever on its setup eventfd when the worker dies mid-start.
        "--pdeathsig=KILL",
        "--",
        spec.bwrap,
        "--unshare-user",
        "--unshare-ipc",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--uid",
        str(BOX_UID),
        "--gid",
        str(BOX_UID),
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--as-pid-1",
        "--cap-drop",
        "ALL",
        "--hostname",
        "box",
        "--clearenv",
        "--info-fd",
        str(INFO_FD),
        "--block-fd",
        str(BLOCK_FD),
    ]
    for name, value in {**BASE_ENV, **spec.toolchain.env}.items():
        argv += ["--setenv", name, value]
    # Toolchain paths differ between hosts (Debian packages here, /opt builds in the worker
    # image): a missing one is skipped, and only that language then fails to run.
    for host, box in COMMON_BINDS:
        argv += ["--ro-bind-try" if host != "/usr" else "--ro-bind", host, box]
    for target, link in USR_SYMLINKS:
        argv += ["--symlink", target, link]
    argv += ["--tmpfs", "/usr/local"]  # hide what the host installed there
    for host, box in spec.toolchain.binds:
        argv += ["--ro-bind-try", host, box]
    size = str(spec.scratch_bytes)
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--perms", "1777", "--size", size, "--tmpfs", BOX_SHM]
    argv += ["--perms", "1777", "--size", size, "--tmpfs", BOX_TMP]
    argv += ["--bind" if spec.writable else "--ro-bind", spec.work_dir, BOX_DIR]
    argv += ["--ro-bind", spec.boxinit, BOXINIT_PATH]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", BOX_DIR, "--"]
    return [*argv, BOXINIT_PATH, *command]
