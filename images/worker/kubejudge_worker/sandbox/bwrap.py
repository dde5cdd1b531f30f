"""The bubblewrap command line of a box server: a pure function of its inputs.

bwrap starts as an unprivileged host uid (setpriv drops it there), so the box is that uid to
the kernel. The box gets new user, pid, ipc, uts, net and (where the kernel allows) cgroup
namespaces, has no capabilities, dies with the worker, and sits in its own session (no
TIOCSTI into our tty). Its root is a read-only tmpfs holding only read-only toolchain binds
(every language's: one box serves them all), a private /proc, a minimal /dev, and the empty
mount points /box and /tmp. Its environment is empty; boxd gives each run its own.

What bwrap sets up once, boxd refines per submission and per run (see boxd.c): a fresh /box,
/tmp and /dev/shm, and fresh user, mount, pid and ipc namespaces.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubejudge_worker.sandbox.toolchains import (
    BOX_TMP,
    COMMON_BINDS,
    TOOLCHAINS,
    USR_SYMLINKS,
)

BOX_DIR = "/box"
BOXD_PATH = "/.boxd"
CONTROL_FD = 3  # boxd's requests and replies
INFO_FD = 4  # bwrap tells us the box's first pid here...
BLOCK_FD = 5  # ...and waits on this until we have put it in its memory cgroup
BOXD_FD = 6  # boxd's binary, which bwrap copies into the box: its host path stays unseen


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpec:
    bwrap: str  # absolute path of the bwrap binary
    setpriv: str  # absolute path of setpriv, which drops to the box's uid before bwrap starts
    boxd: str  # host path of the compiled box server


def server_argv(spec: ServerSpec, host_uid: int) -> list[str]:
    uid = str(host_uid)
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
        uid,
        "--gid",
        uid,
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
    # Toolchain paths differ between hosts (Debian packages here, /opt builds in the worker
    # image): a missing one is skipped, and only that language then fails to run.
    for host, box in COMMON_BINDS:
        argv += ["--ro-bind-try" if host != "/usr" else "--ro-bind", host, box]
    for target, link in USR_SYMLINKS:
        argv += ["--symlink", target, link]
    argv += ["--tmpfs", "/usr/local"]  # hide what the host installed there
    for toolchain in TOOLCHAINS.values():
        for host, box in toolchain.binds:
            argv += ["--ro-bind-try", host, box]
    argv += ["--proc", "/proc", "--dev", "/dev", "--dir", BOX_TMP, "--dir", BOX_DIR]
    argv += ["--perms", "0555", "--ro-bind-data", str(BOXD_FD), BOXD_PATH]
    argv += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", "/", "--"]
    return [*argv, BOXD_PATH, "ns", BOX_DIR]
