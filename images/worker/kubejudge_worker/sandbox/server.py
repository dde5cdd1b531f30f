"""One box server: a boxd process (in its bubblewrap box, or bare in rlimit mode) and the
socket we talk to it on. See boxd.c for what it does and the protocol.

Used by one thread at a time. Started with `posix_spawn` (no Python code runs between fork
and exec, so it is safe in a threaded program), in a new session, so `kill` takes down the
whole box: bwrap's `--die-with-parent` ends boxd, and with boxd (PID 1 of the box) every
process in it. A server in a memory cgroup is put there before its first instruction.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import signal
import socket

from kubejudge_worker.sandbox.bwrap import BLOCK_FD, BOXD_FD, CONTROL_FD, INFO_FD
from kubejudge_worker.sandbox.cgroups import BoxCgroup

REPLY_TIMEOUT_S = 10.0  # for requests that do not run a program (those wait for the run)
_MAX_REPLY = 4096


class BoxServerError(OSError):
    """The server refused a request, or is gone."""


class BoxServer:
    def __init__(
        self, *, pid: int, uid: int, control: socket.socket, cgroup: BoxCgroup | None
    ) -> None:
        self.pid = pid
        self.uid = uid  # the host uid its programs run as
        self.cgroup = cgroup
        self._control = control
        self._dead = False
        self._owed = 0  # requests sent whose replies are not read yet

    @classmethod
    def start(
        cls,
        argv: list[str],
        *,
        env: dict[str, str],
        uid: int,
        cgroup: BoxCgroup | None,
        handshake: bool,
        boxd: int | None = None,
    ) -> BoxServer:
        """Spawn `argv` with the control socket at fd 3 and, if `handshake`, bwrap's info and
        block fds at 4 and 5, on which the box waits until it is in `cgroup`; `boxd`, an fd
        of the box server's binary, goes to fd 6."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        targets = {CONTROL_FD: theirs.fileno()}
        if boxd is not None:
            targets[BOXD_FD] = boxd
        if handshake:
            info_r, info_w = os.pipe()
            block_r, block_w = os.pipe()
            targets |= {INFO_FD: info_w, BLOCK_FD: block_r}
        # Lift every source above the targets first, so no dup2 clobbers a source still needed.
        lifted = {to: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 16) for to, fd in targets.items()}
        actions = [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in lifted.items()]
        try:
            pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=True)
        finally:
            for fd in lifted.values():
                os.close(fd)
            theirs.close()
            if handshake:
                os.close(info_w)
                os.close(block_r)
        server = cls(pid=pid, uid=uid, control=ours, cgroup=cgroup)
        try:
            if handshake:
                server._handshake(info_r, block_w)
            elif cgroup is not None:
                cgroup.add(pid)  # boxd forks nothing before its first request
        except OSError:
            server.kill()
            raise
        return server

    def _handshake(self, info_r: int, block_w: int) -> None:
        """Move the box's first process into our cgroup before it may run anything.

        Closing the block fd unwritten would let it go on unconfined: on failure the caller
        kills it.
        """
        try:
            with os.fdopen(info_r, "rb") as info:
                text = info.read(4096)
            match = re.search(rb'"child-pid"\s*:\s*(\d+)', text)
            if match is None:
                raise BoxServerError("bubblewrap did not start the box")
            if self.cgroup is not None:
                self.cgroup.add(int(match.group(1)))
            os.write(block_w, b"go")
        finally:
            os.close(block_w)

    @property
    def alive(self) -> bool:
        """False once it died or was killed: a hang-up or anything unasked on its socket."""
        if self._dead:
            return False
        if self._owed:  # its socket holds replies we asked for: `settle` reads them
            return True
        ready, _, _ = select.select([self._control], [], [], 0)
        if ready:
            self.kill()
        return not self._dead

    def request(self, fields: list[bytes], *, fds: list[int] | None = None) -> None:
        """Send one request; `fds` go with it (we keep our copies). See `reply`."""
        message = b"\0".join(fields)
        try:
            if fds:
                socket.send_fds(self._control, [message], fds)
            else:
                self._control.send(message)
        except OSError as error:
            self.kill()
            raise BoxServerError(f"box server gone: {error}") from error
        self._owed += 1

    def reply(self, *, timeout: float | None = REPLY_TIMEOUT_S) -> None:
        """Wait for the answer to the oldest request not answered yet; raise if it was an
        error."""
        self._control.settimeout(timeout)
        try:
            answer = self._control.recv(_MAX_REPLY)
        except OSError as error:  # TimeoutError included: the server is stuck
            self.kill()
            raise BoxServerError(f"box server did not answer: {error}") from error
        self._owed -= 1
        status, _, message = answer.partition(b"\0")
        if status == b"ok":
            return
        if not answer:
            self.kill()
            raise BoxServerError("box server gone")
        raise BoxServerError(message.decode(errors="replace") or "box server error")

    def call(self, fields: list[bytes], *, fds: list[int] | None = None) -> None:
        self.request(fields, fds=fds)
        self.reply()

    def settle(self) -> None:
        """Read the replies still owed, in order; raise at the first error."""
        while self._owed:
            self.reply()

    def kill(self) -> None:
        """End the box and everything in it; idempotent."""
        if self._dead:
            return
        self._dead = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self._control.close()
        if self.cgroup is not None:
            self.cgroup.remove()  # once the box's processes are gone (see BoxCgroup.remove)
