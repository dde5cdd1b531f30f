"""Throwaway Redis and PostgreSQL servers on loopback, for `kubejudge dev` and the tests.

Both run as child processes with their data in a folder we own; nothing touches the system's
own instances. Each runs in its own session, so a Ctrl-C in the terminal reaches the roles
using them (which stop first) and not the servers, which their owner stops last.
PostgreSQL refuses to run as root, so as root it runs as the `postgres` user; when that user
cannot reach the folder asked for (a checkout in root's home or in a 0700 `mktemp -d` folder),
its data goes to a folder of its own under /var/lib/kubejudge-dev instead (`postgres_home`).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class LocalServer:
    name: str
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds so far of a process and its live children (PostgreSQL's
    backends), from /proc (Linux): what a benchmark charges to a server."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _raise_if_exited(process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    if process.poll() is not None:
        raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-2000:]}")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _raise_if_exited(process, name, log)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{name} did not listen on 127.0.0.1:{port} within 30 s")


def start_redis(data_dir: Path, port: int | None = None) -> LocalServer:
    """redis-server with AOF on, as in the chart, so restarts keep the queue."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "redis.log"
    argv = [
        binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data_dir),
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--protected-mode", "yes", "--logfile", str(log), "--daemonize", "no",
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    _wait_for_port(port, process, "redis-server", log)
    return LocalServer("redis", f"redis://127.0.0.1:{port}/0", process)


def _postgres_bin(tool: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")) or [shutil.which(tool) or ""]
    if not found[-1]:
        raise FileNotFoundError(
            f"PostgreSQL's {tool} is not installed (apt-get install postgresql)"
        )
    return found[-1]


# Root-owned and only root may write in /var/lib, so no other user can plant anything on this
# path; each state folder gets its own subfolder, so two checkouts never share a database.
POSTGRES_FALLBACK_ROOT = Path("/var/lib/kubejudge-dev")


def postgres_home(data_dir: Path, account: pwd.struct_passwd) -> Path:
    """`data_dir` if `account` can write there (and reach it), else its fallback folder."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    if _writable_by(account, data_dir):
        return data_dir
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:16]
    POSTGRES_FALLBACK_ROOT.mkdir(mode=0o755, exist_ok=True)
    home = POSTGRES_FALLBACK_ROOT / digest
    home.mkdir(mode=0o700, exist_ok=True)
    os.chown(home, account.pw_uid, account.pw_gid)
    print(
        f"postgres: {account.pw_name} cannot reach {data_dir}; its data is in {home}",
        flush=True,
    )
    return home


def as_account(account: pwd.struct_passwd) -> dict[str, Any]:
    """subprocess arguments to run as `account` with its own groups: `user=` alone keeps
    root's group and supplementary groups."""
    return {
        "user": account.pw_uid,
        "group": account.pw_gid,
        "extra_groups": os.getgrouplist(account.pw_name, account.pw_gid),
    }


def _writable_by(account: pwd.struct_passwd, path: Path) -> bool:
    probe = subprocess.run(
        ["test", "-w", str(path), "-a", "-x", str(path)],
        **as_account(account), cwd="/", check=False,
    )  # fmt: skip
    return probe.returncode == 0


def start_postgres(
    data_dir: Path, port: int | None = None, database: str = "kubejudge"
) -> LocalServer:
    """initdb (once) into `data_dir`, then a postgres on loopback with trust auth for one user."""
    port = port or free_port()
    account = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    run_as = as_account(account) if account is not None else {}
    if account is not None:
        data_dir = postgres_home(data_dir, account)
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir / "pgdata"
    log = data_dir / "postgres.log"
    if not (pgdata / "PG_VERSION").exists():
        initdb = subprocess.run(
            [_postgres_bin("initdb"), "-D", str(pgdata), "-U", "kubejudge", "--auth=trust",
             "--encoding=UTF8", "--no-sync"],
            **run_as, capture_output=True, text=True, cwd=data_dir,
        )  # fmt: skip
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb into {pgdata} failed: {initdb.stderr.strip()}")
    with log.open("ab") as log_file:
        if account is not None:
            os.chown(log, account.pw_uid, account.pw_gid)
        process = subprocess.Popen(
            [_postgres_bin("postgres"), "-D", str(pgdata), "-h", "127.0.0.1", "-p", str(port),
             "-k", str(data_dir), "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            **run_as, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
            start_new_session=True, cwd=data_dir,
        )  # fmt: skip
    _wait_for_port(port, process, "postgres", log)
    _wait_for_postgres_ready(port, process, log)
    created = subprocess.run(
        [_postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "kubejudge",
         database],
        capture_output=True, text=True,
    )  # fmt: skip
    if created.returncode != 0 and "already exists" not in created.stderr:
        raise RuntimeError(f"createdb failed: {created.stderr}")
    return LocalServer("postgres", f"postgresql://kubejudge@127.0.0.1:{port}/{database}", process)


def _wait_for_postgres_ready(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Listening is not ready: during recovery PostgreSQL answers "the database system is
    starting up" on an open port, so ask pg_isready until it accepts connections."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _raise_if_exited(process, "postgres", log)
        ready = subprocess.run(
            [_postgres_bin("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], check=False
        )
        if ready.returncode == 0:
            return
        time.sleep(0.05)
    raise TimeoutError(f"postgres on 127.0.0.1:{port} did not accept connections within 30 s")


@contextlib.contextmanager
def running(*servers: LocalServer) -> Iterator[tuple[LocalServer, ...]]:
    try:
        yield servers
    finally:
        for server in reversed(servers):
            server.stop()
