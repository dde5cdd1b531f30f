"""Inside each image `make images` built (buildah's storage, tag dev): its
own role imports, its `kubejudge` offers that role only, and the other roles' packages and the
heavy libraries it never imports are absent; the managed stores' images start and answer.

The session builds the images first (tests/conftest.py), as `make images` would.
Each check is a process in a throwaway container (`buildah run --isolation chroot`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from kubejudge_operator.resources import stores
from support.images import TAG

ROLES = ("api", "gateway", "operator", "worker")
DEVELOPMENT = ("kubejudge_dev", "matplotlib", "rich")
DATABASE = ("sqlalchemy", "alembic", "asyncpg")
HTTP_SERVER = ("fastapi", "starlette", "uvicorn")
KUBERNETES = ("kopf", "kubernetes")
# What each image must not hold, beyond the other roles' packages.
ABSENT = {
    "api": (*DEVELOPMENT, *KUBERNETES),
    "gateway": (*DEVELOPMENT, *KUBERNETES, *DATABASE, *HTTP_SERVER),
    "operator": (*DEVELOPMENT, *DATABASE, *HTTP_SERVER, "websockets"),
    "worker": (*DEVELOPMENT, *KUBERNETES, *HTTP_SERVER, "websockets", "httpx"),
}
# Run inside the image by its venv's python: import the role, look for the absent modules
# without importing them, and list the roles `kubejudge` offers.
PROBE = """
import importlib, importlib.util, json, sys
from kubejudge.cli import installed_roles
role, absent = sys.argv[1], sys.argv[2:]
importlib.import_module(f"kubejudge_{role}.main")
present = [name for name in absent if importlib.util.find_spec(name) is not None]
print(json.dumps({"present": present, "roles": sorted(installed_roles())}))
"""

pytestmark = pytest.mark.skipif(shutil.which("buildah") is None, reason="needs buildah")


def _buildah(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(
        ["buildah", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@contextlib.contextmanager
def container_of(image: str) -> Iterator[str]:
    present = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], capture_output=True, check=False
    )
    assert present.returncode == 0, f"{image} is not built: tests/conftest.py builds it first"
    container = _buildah("from", "--quiet", "--pull-never", image).strip()
    try:
        yield container
    finally:
        _buildah("rm", container)


def run_in(image: str, *command: str, env: dict[str, str] | None = None) -> str:
    """`command` in a throwaway container of `image`; its stdout."""
    flags = [arg for name, value in (env or {}).items() for arg in ("--env", f"{name}={value}")]
    with container_of(image) as container:
        return _buildah("run", "--isolation", "chroot", *flags, container, "--", *command)


@pytest.mark.parametrize("role", ROLES)
def test_an_image_holds_its_role_and_nothing_else(role: str) -> None:
    others = [f"kubejudge_{other}" for other in ROLES if other != role]
    image = f"localhost/kubejudge/{role}:{TAG}"
    out = run_in(image, "/opt/kubejudge/bin/python", "-c", PROBE, role, *others, *ABSENT[role])
    found = json.loads(out.splitlines()[-1])
    assert found["present"] == [], f"{image} holds {found['present']}"
    assert found["roles"] == [role], f"{image}: kubejudge offers {found['roles']}"


def test_the_redis_image_keeps_an_append_only_file() -> None:
    """Debian's redis-server as the operator starts it (AOF on), on a socket: it answers and
    writes its append-only file under /data, as the uid the operator runs it as."""
    script = (
        "redis-server --port 0 --unixsocket /tmp/redis.sock --dir /tmp "
        "--appendonly yes --appendfsync always --save '' --daemonize yes "
        "&& for _ in $(seq 50); do [ -S /tmp/redis.sock ] && break; sleep 0.1; done "
        "&& redis-cli -s /tmp/redis.sock set k v && redis-cli -s /tmp/redis.sock ping "
        "&& id -u && ls /tmp/appendonlydir && redis-cli -s /tmp/redis.sock shutdown nosave"
    )
    out = run_in(f"localhost/{stores.DEFAULT_REDIS_IMAGE}", "sh", "-c", script)
    assert "PONG" in out
    assert str(stores.REDIS_UID) in out.split()
    assert ".aof" in out


def test_the_postgres_image_creates_the_database_and_the_password() -> None:
    """The entrypoint with the environment the operator gives it: a fresh cluster whose
    database exists and which asks network clients for the password."""
    env = {
        "POSTGRES_USER": stores.POSTGRES_USER,
        "POSTGRES_DB": stores.POSTGRES_DB,
        "POSTGRES_PASSWORD": "s3cret-for-the-test",
        "PGDATA": "/tmp/pgdata",
    }
    # Listening on a socket in /tmp only: this test must not take a port of the machine.
    script = (
        "postgres-entrypoint -c listen_addresses= -k /tmp >/tmp/log 2>&1 & "
        "for _ in $(seq 100); do pg_isready -q -h /tmp && break; sleep 0.2; done; "
        f"psql -h /tmp -U {stores.POSTGRES_USER} -d {stores.POSTGRES_DB} -Atc "
        "'select current_database()'; grep -c scram-sha-256 /tmp/pgdata/pg_hba.conf; "
        "pg_ctl -D /tmp/pgdata stop -m fast >/dev/null"
    )
    out = run_in(f"localhost/{stores.DEFAULT_POSTGRES_IMAGE}", "sh", "-c", script, env=env)
    lines = out.split()
    assert stores.POSTGRES_DB in lines, out
    assert int(lines[-1]) >= 2, "network clients must give the password"
