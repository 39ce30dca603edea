"""What every part of the store shares: the engine, short transactions, names, the clock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from envplane.errors import BadInput, TransientError
from envplane.names import check_env_name
from envplane.state.db import WRITE, safe_url
from envplane.state.procs import Me


def now() -> datetime:
    return datetime.now(UTC)


def check_choice(value: str, allowed: tuple[str, ...], *, what: str) -> str:
    if value not in allowed:
        raise BadInput(f"invalid {what} {value!r}: use one of {', '.join(allowed)}")
    return value


class StoreBase:
    """Each public method runs in its own short transaction and commits before returning."""

    def __init__(self, engine: Engine, home: Path, me: Me) -> None:
        self._engine = engine
        self.home = home
        self._me = me

    @property
    def url(self) -> str:
        return safe_url(self._engine.url)

    @property
    def actor(self) -> str:
        return self._me.user

    @contextmanager
    def _session(self, *, write: bool) -> Iterator[Session]:
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE: True})
                with Session(bind=conn, expire_on_commit=False) as session, session.begin():
                    yield session
        except OperationalError as exc:
            raise TransientError(
                f"state database {self.url} did not answer: {exc.orig}",
                hint="retry; if it persists, check that the database is reachable and not "
                "locked by a stuck process",
            ) from None

    def _read(self) -> AbstractContextManager[Session]:
        return self._session(write=False)

    def _write(self) -> AbstractContextManager[Session]:
        return self._session(write=True)

    @staticmethod
    def _env(name: str) -> str:
        return check_env_name(name)
