"""Locks on environments: one operation that changes an environment (exclusive), or any
number that only read it (shared: a backup, the source of a clone or sync), never both.

The exclusive lock is the `locks` row: an INSERT against the primary key, which both SQLite
(under BEGIN IMMEDIATE) and PostgreSQL (the unique index waits for the first inserter) decide
for exactly one of any number of racing processes. A holder found dead on this host is
replaced with a compare-and-swap UPDATE, so two processes cannot both take over a stale lock.

A shared lock is a `read_locks` row. Both kinds are taken the same way: write your own row
(committed), then look for a live row of the other kind; if there is one, remove yours and
back off. Each side looks only after its own row is committed, so of a writer and a reader
racing at least one sees the other: they can both back off (and retry), never both proceed.
"""

from __future__ import annotations

import random
import time

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from envplane.errors import LockHeld, TransientError
from envplane.names import check_ident
from envplane.state.base import StoreBase, now
from envplane.state.models import AuditRow, LockRow, ReadLockRow
from envplane.state.procs import is_alive

# A writer and a reader that meet back off and try again this many times, after a short
# random pause, before the later one gives up: a race costs milliseconds, not an exit 3.
BACKOFFS = 4


def _pause() -> None:
    time.sleep(random.uniform(0.02, 0.08))  # noqa: S311 - jitter, not a secret


class LockMixin(StoreBase):
    def _holder(self, op_id: str) -> str:
        me = self._me
        return f"{op_id} pid {me.pid} on {me.host} by {me.user}"

    def acquire_lock(self, env: str, op_id: str) -> None:
        """Take the environment's exclusive lock for `op_id`, or raise LockHeld naming its
        holder (or a live reader)."""
        self._env(env)
        for attempt in range(BACKOFFS + 1):
            self._take_exclusive(env, op_id)
            reader = self._live_readers(env)
            if reader is None:
                return
            self.release_lock(env, op_id)
            if attempt == BACKOFFS:
                raise LockHeld(env, reader, reading=True)
            _pause()
        raise AssertionError("unreachable")

    def acquire_shared(self, env: str, op_id: str) -> None:
        """Take a shared (read) lock on the environment for `op_id`: any number of readers,
        no writer. LockHeld names the operation that holds the exclusive lock."""
        self._env(env)
        for attempt in range(BACKOFFS + 1):
            self._insert_reader(env, op_id)
            with self._read() as s:
                held = s.get(LockRow, env)
                if held is not None:
                    s.expunge(held)
            # A writer that died is no writer: its lock waits for the next writer to take it.
            if held is None or (
                held.host == self._me.host and not is_alive(held.pid, held.pid_start)
            ):
                return
            self.release_shared(env, op_id)
            if attempt == BACKOFFS:
                raise LockHeld(env, held.holder)
            _pause()

    def release_shared(self, env: str, op_id: str) -> None:
        with self._write() as s:
            s.execute(
                delete(ReadLockRow).where(
                    ReadLockRow.env == self._env(env), ReadLockRow.operation_id == op_id
                )
            )

    def lock_operations(self, env: str) -> set[str]:
        """The operations holding a lock on the environment, exclusive or shared, whose
        process is alive (or on another host, where it cannot be told)."""
        with self._read() as s:
            held = s.get(LockRow, self._env(env))
            rows: list[LockRow | ReadLockRow] = [held] if held is not None else []
            rows += s.scalars(select(ReadLockRow).where(ReadLockRow.env == env))
            me = self._me.host
            return {
                row.operation_id
                for row in rows
                if row.host != me or is_alive(row.pid, row.pid_start)
            }

    def readers(self, env: str) -> list[str]:
        """Who holds a shared lock on the environment (dead holders included)."""
        with self._read() as s:
            rows = s.scalars(select(ReadLockRow).where(ReadLockRow.env == self._env(env)))
            return [row.holder for row in rows]

    def _insert_reader(self, env: str, op_id: str) -> None:
        # A row already there is this operation's (a resume reads again): still ours.
        self._insert_row(ReadLockRow, env, op_id)

    def _insert_row(self, row_type: type[LockRow | ReadLockRow], env: str, op_id: str) -> bool:
        """Write this process's lock row of `row_type`; False when the key is taken."""
        me = self._me
        try:
            with self._write() as s:
                s.add(
                    row_type(
                        env=env,
                        operation_id=op_id,
                        holder=self._holder(op_id),
                        pid=me.pid,
                        host=me.host,
                        pid_start=me.start,
                        acquired_at=now(),
                    )
                )
        except IntegrityError:
            return False
        return True

    def _live_readers(self, env: str) -> str | None:
        """Every live reader's holder text, joined (two backups may read at once: naming only
        one of them would name whichever the database lists first); readers found dead on this
        host are removed."""
        with self._read() as s:
            rows = list(s.scalars(select(ReadLockRow).where(ReadLockRow.env == env)))
            for row in rows:
                s.expunge(row)
        live: list[str] = []
        for row in rows:
            if row.host != self._me.host or is_alive(row.pid, row.pid_start):
                live.append(row.holder)
                continue
            with self._write() as s:
                s.execute(
                    delete(ReadLockRow).where(
                        ReadLockRow.env == env,
                        ReadLockRow.operation_id == row.operation_id,
                        ReadLockRow.pid == row.pid,
                    )
                )
                s.add(
                    AuditRow(
                        at=now(),
                        actor=self._me.user,
                        env=env,
                        action="lock-takeover",
                        detail=f"removed the shared lock of {row.holder}: that process is "
                        "no longer running",
                    )
                )
        return " and ".join(sorted(live)) or None

    def _take_exclusive(self, env: str, op_id: str) -> None:
        for _attempt in range(5):
            if self._try_insert(env, op_id):
                return
            with self._read() as s:
                held = s.get(LockRow, env)
                if held is not None:
                    s.expunge(held)
            if held is None:
                continue  # released between our INSERT and our look: try again
            if self._is_mine(held, op_id):
                return
            if held.host != self._me.host or is_alive(held.pid, held.pid_start):
                raise LockHeld(env, held.holder)
            if self._take_over(env, op_id, held):
                return
        raise TransientError(
            f"could not take the lock of environment {env!r}: it kept changing", hint="retry"
        )

    def _is_mine(self, held: LockRow, op_id: str) -> bool:
        me = self._me
        return (held.operation_id, held.pid, held.host) == (op_id, me.pid, me.host)

    def _try_insert(self, env: str, op_id: str) -> bool:
        return self._insert_row(LockRow, env, op_id)

    def _take_over(self, env: str, op_id: str, stale: LockRow) -> bool:
        me = self._me
        with self._write() as s:
            taken = s.execute(
                update(LockRow)
                .where(
                    LockRow.env == env,
                    LockRow.operation_id == stale.operation_id,
                    LockRow.pid == stale.pid,
                    LockRow.host == stale.host,
                )
                .values(
                    operation_id=op_id,
                    holder=self._holder(op_id),
                    pid=me.pid,
                    host=me.host,
                    pid_start=me.start,
                    acquired_at=now(),
                )
                .execution_options(synchronize_session=False)
            )
            if not taken.rowcount:  # type: ignore[attr-defined]
                return False  # another process took it over first
            # In the same transaction: a takeover is never without its audit line.
            s.add(
                AuditRow(
                    at=now(),
                    actor=me.user,
                    env=env,
                    action="lock-takeover",
                    detail=f"{op_id} took the lock of {stale.holder}: that process "
                    "is no longer running",
                )
            )
            return True

    def release_lock(self, env: str, op_id: str) -> None:
        """Release if `op_id` holds it; a lock taken over by someone else is left alone."""
        with self._write() as s:
            s.execute(
                delete(LockRow).where(LockRow.env == self._env(env), LockRow.operation_id == op_id)
            )

    def acquire_named_lock(self, name: str, op_id: str) -> None:
        """Take a store-wide lock that belongs to no environment (`previews`: the admission of
        new previews, previews/quotas.py): exclusive, taken over from a holder that died, else
        LockHeld naming its holder. Its key cannot be an environment's."""
        self._take_exclusive(_named(name), op_id)

    def release_named_lock(self, name: str, op_id: str) -> None:
        with self._write() as s:
            s.execute(
                delete(LockRow).where(LockRow.env == _named(name), LockRow.operation_id == op_id)
            )

    def lock_holder(self, env: str) -> str | None:
        with self._read() as s:
            held = s.get(LockRow, self._env(env))
            return None if held is None else held.holder


def _named(name: str) -> str:
    # "~" is in no environment name (names.ENV_NAME_RE): the two kinds of key never meet.
    return "~" + check_ident(name, what="lock name")
