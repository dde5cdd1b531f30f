"""A submission's private work dir: a fresh, size-capped tmpfs the sandbox sees at /box.

The host touches it exactly twice: it writes the source file into the fresh, empty mount
before any sandboxed code has run (through a directory fd, refusing links), and it unmounts
it at the end. It never lists, reads, chowns or deletes anything inside: unmounting (lazy,
so a lingering reference cannot block it) drops the whole tree without walking a path the
program could have replaced with a symlink. What the program printed reaches the host only
through pipes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import tempfile
from pathlib import Path

_MNT_DETACH = 2
_CLONE_NEWNS = 0x00020000
_MS_REC = 0x4000
_MS_PRIVATE = 0x40000
_MOUNT_FLAGS = 0x2 | 0x4  # MS_NOSUID | MS_NODEV
_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


class WorkDirError(RuntimeError):
    """The work dir could not be created (no privilege to mount a tmpfs, say)."""


class WorkDir:
    def __init__(self, *, root: Path, size_bytes: int, owner_uid: int) -> None:
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        root.chmod(0o711)  # the box user passes through to its own work dir, lists nothing
        self.path = Path(tempfile.mkdtemp(prefix="box-", dir=root))
        # The box user owns it; group 0 may write too, so the host (container root without
        # CAP_DAC_OVERRIDE) can create the source file before the first run.
        options = f"size={size_bytes},mode=0775,uid={owner_uid},gid=0"
        if _libc.mount(b"tmpfs", bytes(self.path), b"tmpfs", _MOUNT_FLAGS, options.encode()) != 0:
            error = ctypes.get_errno()
            os.rmdir(self.path)
            raise WorkDirError(f"mounting the work dir tmpfs: {os.strerror(error)}")
        self._dir_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def write_file(self, name: str, data: bytes, *, owner_uid: int) -> None:
        """Create `name` (a plain file name) in the still-untouched work dir."""
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"expected a plain file name, got {name!r}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o644, dir_fd=self._dir_fd)
        try:
            os.fchown(fd, owner_uid, owner_uid)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)

    def remove(self) -> None:
        os.close(self._dir_fd)
        if _libc.umount2(bytes(self.path), _MNT_DETACH) != 0:
            error = ctypes.get_errno()
            raise WorkDirError(f"unmounting the work dir: {os.strerror(error)}")
        os.rmdir(self.path)  # the bare mount point on the host's own filesystem, now empty


def private_mount_namespace() -> None:
    """Move this (still single-threaded) process into its own mount namespace.

    Work-dir tmpfs mounts made afterwards are invisible to the rest of the host and vanish
    when the process dies, even by SIGKILL, so a crashed worker leaks no mounts.
    """
    if _libc.unshare(_CLONE_NEWNS) != 0:
        error = ctypes.get_errno()
        raise WorkDirError(f"unshare(CLONE_NEWNS): {os.strerror(error)}")
    if _libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        error = ctypes.get_errno()
        raise WorkDirError(f"making / private: {os.strerror(error)}")
