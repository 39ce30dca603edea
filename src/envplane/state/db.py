"""Turning a database URL into a configured SQLAlchemy engine (SQLite file or PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError

from envplane.errors import BadInput

# Connection execution option: this connection will write, so SQLite must take the write
# lock when the transaction begins, not halfway through it (a deferred upgrade can fail
# at once with "database is locked" instead of waiting).
WRITE = "envplane_write"
BUSY_TIMEOUT_MS = 30_000
URL_HINT = "use sqlite:////absolute/path/state.db or postgresql+psycopg://user:password@host/db"


def safe_url(url: URL | str) -> str:
    """The URL as it may be shown to a user: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable URL>"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise BadInput(
            f"state database URL {url.split('@')[-1]!r} is not a database URL", hint=URL_HINT
        ) from None
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        return _sqlite_engine(parsed)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return _postgres_engine(parsed.set(drivername="postgresql+psycopg"))
    raise BadInput(
        f"state database URL {safe_url(parsed)!r}: driver {parsed.drivername!r} is not supported",
        hint=URL_HINT,
    )


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BadInput(f"state database URL {safe_url(url)!r} does not name a file", hint=URL_HINT)
    path = Path(database).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Created here so that its mode is 0600: the state names every environment and holds
        # (encrypted) secrets. An empty file is a valid empty SQLite database.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = create_engine(
        url.set(database=str(path)), connect_args={"timeout": BUSY_TIMEOUT_MS / 1000}
    )
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the driver so `_sqlite_begin` decides DEFERRED or IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers never block the writer, so envplane processes on different
        # environments run side by side. FULL: a committed journal line survives power loss.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgres_engine(url: URL) -> Engine:
    return create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": 10, "application_name": "envplane"},
    )
