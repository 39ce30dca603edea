"""One operation per environment at a time: the `locks` row is the lock.

Taking it is an INSERT against the primary key, which both SQLite (under BEGIN IMMEDIATE)
and PostgreSQL (the unique index waits for the first inserter) decide for exactly one of
any number of racing processes. A holder found dead on this host is replaced with a
compare-and-swap UPDATE, so two processes cannot both take over the same stale lock.
"""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from envplane.errors import LockHeld, TransientError
from envplane.state.base import StoreBase, now
from envplane.state.models import AuditRow, LockRow
from envplane.state.procs import is_alive


class LockMixin(StoreBase):
    def _holder(self, op_id: str) -> str:
        me = self._me
        return f"{op_id} pid {me.pid} on {me.host} by {me.user}"

    def acquire_lock(self, env: str, op_id: str) -> None:
        """Take the environment's lock for `op_id`, or raise LockHeld naming its holder."""
        self._env(env)
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
        me = self._me
        try:
            with self._write() as s:
                s.add(
                    LockRow(
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

    def lock_holder(self, env: str) -> str | None:
        with self._read() as s:
            held = s.get(LockRow, self._env(env))
            return None if held is None else held.holder
