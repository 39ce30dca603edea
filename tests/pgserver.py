"""A throwaway real PostgreSQL server for tests: `running_postgres()` and two fixtures.

Use from any test module (the fixtures are named `postgres_url`, `fresh_database` and
`fresh_schema`; the `_fixture` suffix only keeps ruff from flagging test arguments as
redefinitions; import `postgres_url_fixture` beside the one you use):

    from tests.pgserver import fresh_database_fixture, postgres_url_fixture  # noqa: F401

    def test_x(postgres_url: str) -> None: ...

All modules of one pytest process share one server (one per xdist worker). The server runs
as `nobody` when the tests run as root (PostgreSQL refuses root), listens on a free
127.0.0.1 port only, and lives in a 0755 directory under /tmp that is removed after.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

ROLE = "envplane"
DATABASE = "envplane"
NOBODY = 65534  # uid and gid of nobody/nogroup on Debian


def pg_bindir() -> Path:
    """PostgreSQL's binaries, found the way envplane finds them."""
    from envplane.targets.local.pgcluster import bindir

    return bindir()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owner() -> int | None:
    """The uid (and gid) to run PostgreSQL as: nobody when we are root, else ourselves."""
    return NOBODY if os.geteuid() == 0 else None


def _chown_tree(path: Path) -> None:
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, NOBODY, NOBODY)
        for name in dirs + files:
            os.chown(os.path.join(root, name), NOBODY, NOBODY)


def _initdb(bindir: Path, base: Path, password: str) -> Path:
    data = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    _chown_tree(base)
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            ROLE,
            f"--pwfile={pwfile}",
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
        user=_owner(),
        group=_owner(),
        extra_groups=[] if _owner() is not None else None,
    )
    pwfile.unlink()
    return data


def _start(bindir: Path, base: Path, data: Path, port: int) -> subprocess.Popen[bytes]:
    log = open(base / "postgres.log", "wb")  # noqa: SIM115  (closed by the child's exit)
    with log:
        return subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={base}",
                # Durability buys nothing in a throwaway test server; speed does.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=100",
                "-c",
                "shared_buffers=32MB",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"},
            start_new_session=True,
            user=_owner(),
            group=_owner(),
            extra_groups=[] if _owner() is not None else None,
        )


def _wait_ready(proc: subprocess.Popen[bytes], dsn: str, log: Path, timeout: float = 30) -> bool:
    """True once it accepts connections; False if it exited (e.g. the port was taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            psycopg.connect(dsn, connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            time.sleep(0.05)
    raise RuntimeError(f"PostgreSQL did not start in {timeout} s; log:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, then exit
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a private PostgreSQL; yield `postgresql+psycopg://envplane:PW@127.0.0.1:PORT/envplane`.

    The role `envplane` is the cluster's superuser and authenticates by password (over TCP
    and the socket alike); `create_database` and `create_schema` give a test a clean slate.
    The server and its directory are gone afterwards.
    """
    bindir = pg_bindir()
    base = Path(tempfile.mkdtemp(prefix="envplane-pg-", dir="/tmp"))
    base.chmod(0o755)
    password = secrets.token_urlsafe(16)
    proc: subprocess.Popen[bytes] | None = None
    try:
        data = _initdb(bindir, base, password)
        for _attempt in range(5):  # the free port may be taken by a parallel test meanwhile
            port = free_port()
            proc = _start(bindir, base, data, port)
            dsn = f"host=127.0.0.1 port={port} user={ROLE} password={password} dbname=postgres"
            if _wait_ready(proc, dsn, base / "postgres.log"):
                break
            proc.wait()
        else:
            raise RuntimeError(f"PostgreSQL did not start:\n{(base / 'postgres.log').read_text()}")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        yield f"postgresql+psycopg://{ROLE}:{password}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """A new empty database on the server of `url`; returns its URL. `name`: [a-z0-9_]."""
    head, _, _db = url.rpartition("/")
    dsn = head.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{head}/{name}"


class _Shared:
    """One server for every module that asks: pytest gives each importing module its own
    copy of a session fixture, so the server itself is counted here."""

    def __init__(self) -> None:
        self.stack: ExitStack | None = None
        self.url = ""
        self.users = 0

    def acquire(self) -> str:
        if self.stack is None:
            stack = ExitStack()
            self.url = stack.enter_context(running_postgres())
            self.stack = stack
            atexit.register(self.stop)  # in case a session ends without teardown
        self.users += 1
        return self.url

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self.stop()

    def stop(self) -> None:
        stack, self.stack = self.stack, None
        if stack is not None:
            stack.close()


_SHARED = _Shared()


def create_schema(url: str, name: str) -> str:
    """A new empty schema in the database of `url`; returns a URL whose search_path is it.

    Much cheaper than a database (no copy of template1, no checkpoint): use it to give
    each test a clean slate. `name`: [a-z0-9_].
    """
    with psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True
    ) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return f"{url}?options=-csearch_path%3D{name}"


@pytest.fixture(scope="session", name="postgres_url")
def postgres_url_fixture() -> Iterator[str]:
    """The URL of the shared server's `envplane` database; make databases of your own."""
    url = _SHARED.acquire()
    try:
        yield url
    finally:
        _SHARED.release()


@pytest.fixture(name="fresh_database")
def fresh_database_fixture(postgres_url: str) -> str:
    """The URL of a new, empty database of its own for one test."""
    return create_database(postgres_url, f"t_{secrets.token_hex(6)}")


@pytest.fixture(name="fresh_schema")
def fresh_schema_fixture(postgres_url: str) -> str:
    """The URL of a new, empty schema of its own (in the shared database) for one test."""
    return create_schema(postgres_url, f"t_{secrets.token_hex(6)}")
