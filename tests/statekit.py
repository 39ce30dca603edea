"""Fixtures and helpers shared by the tests/test_state_*.py modules (no tests here).

Fixtures are imported by their `*_fixture` names and used by their short names.

`store_url` is parametrized: every test that uses it runs against an SQLite file and against
a database of its own on a real PostgreSQL server (tests.pgserver).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401


@pytest.fixture(params=["sqlite", "postgresql"], name="store_url")
def store_url_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db' / 'state.db'}"
    return str(request.getfixturevalue("fresh_schema"))


@pytest.fixture(name="home")
def home_fixture(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(name="secret_key")
def secret_key_fixture(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("ENVPLANE_SECRET_KEY", key)
    return key


@pytest.fixture(name="store")
def store_fixture(store_url: str, home: Path, secret_key: str) -> Iterator[StateStore]:
    with StateStore.open(store_url, home) as opened:
        yield opened


def raw_rows(url: str, query: str, **params: object) -> list[tuple[object, ...]]:
    """Read the database behind the store's back, as an attacker with a copy of it would."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def raw_execute(url: str, statement: str, **params: object) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


# A child envplane process: `python -c CHILD URL HOME ACTION ARGS...`. It prints one line per
# event and flushes, so the test can follow it.
CHILD = r"""
import os, sys, time
from pathlib import Path
from envplane.errors import LockHeld
from envplane.state.store import StateStore

url, home, action, *args = sys.argv[1:]
store = StateStore.open(url, Path(home))

def say(*words):
    print(*words, flush=True)

if action == "hold":  # take the lock, hold it until stdin closes
    env, op = args
    store.acquire_lock(env, op)
    say("locked", os.getpid())
    sys.stdin.read()
    store.release_lock(env, op)
elif action == "race":  # wait for the go file, then try for the lock
    env, op, go = args
    say("ready")
    while not os.path.exists(go):
        time.sleep(0.005)
    try:
        store.acquire_lock(env, op)
    except LockHeld as exc:
        say("held", exc.holder)
    else:
        say("won", os.getpid())
        sys.stdin.read()
        store.release_lock(env, op)
elif action == "read":  # take a shared lock, hold it until stdin closes
    env, op = args
    try:
        store.acquire_shared(env, op)
    except LockHeld as exc:
        say("held", exc.holder)
    else:
        say("reading", os.getpid())
        sys.stdin.read()
        store.release_shared(env, op)
elif action == "die-reading":  # take a shared lock and die without releasing it
    env, op = args
    store.acquire_shared(env, op)
    say("reading", os.getpid())
    os._exit(1)
elif action == "die-holding":  # take the lock and die without releasing it
    env, op = args
    store.acquire_lock(env, op)
    say("locked", os.getpid())
    os._exit(1)
elif action == "die-mid-operation":  # write part of a journal, then die
    env, = args
    op = store.start_operation(env, "create", {"steps": ["postgres/pg", "service/web"]})
    store.start_step(op.id, 0, "postgres/pg", "create")
    store.finish_step(op.id, 0, "done", "cluster initialised")
    store.start_step(op.id, 1, "service/web", "create")
    say(op.id)
    os._exit(1)
elif action == "open":
    say("opened")
store.close()
"""


def child(url: str, home: Path, action: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(home), action, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.wait(timeout=30)
        assert proc.stderr is not None
        raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()}")
    return line


def finish(proc: subprocess.Popen[str]) -> int:
    """Close the child's stdin (lets a holder release) and wait for it."""
    proc.communicate(timeout=30)
    return proc.returncode
