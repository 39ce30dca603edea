"""The operation journal: every operation and step is written before and after it runs.

Each call is its own committed transaction, so a process killed at any point leaves every
line it wrote; an operation still "running" whose process is gone is one to resume.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from envplane.errors import BadInput, EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, check_choice, now
from envplane.state.models import EnvironmentRow, OperationRow, StepRow
from envplane.state.records import (
    OPERATION_STATUSES,
    STEP_ACTIONS,
    STEP_STATUSES,
    OperationRecord,
    OperationStatus,
    StepAction,
    StepRecord,
    StepStatus,
)


def new_operation_id(at: datetime) -> str:
    """'op-20261127-0215-ab12cd': readable, sorts by start minute, random within it."""
    return f"op-{at:%Y%m%d-%H%M}-{secrets.token_hex(3)}"


def _step(row: StepRow) -> StepRecord:
    return StepRecord(
        operation_id=row.operation_id,
        index=row.index,
        resource_key=row.resource_key,
        action=row.action,  # type: ignore[arg-type]  # guarded by CHECK constraints
        status=row.status,  # type: ignore[arg-type]
        detail=row.detail,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _operation(row: OperationRow, *, steps: bool = True) -> OperationRecord:
    return OperationRecord(
        id=row.id,
        env=row.env,
        kind=row.kind,
        status=row.status,  # type: ignore[arg-type]  # guarded by a CHECK constraint
        actor=row.actor,
        pid=row.pid,
        host=row.host,
        plan=row.plan,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        steps=tuple(_step(s) for s in row.steps) if steps else (),
    )


def _unknown(op_id: str) -> EnvplaneError:
    return BadInput(
        f"no operation {op_id!r} in the state store",
        hint="`envplane history` lists operations and their ids",
    )


class JournalMixin(StoreBase):
    def new_operation_id(self) -> str:
        """An id for an operation about to start (its locks are taken under it first)."""
        return new_operation_id(now())

    def start_operation(
        self, env: str, kind: str, plan: dict[str, Any] | list[Any], *, op_id: str | None = None
    ) -> OperationRecord:
        """Record a running operation; also the environment's last operation, if recorded."""
        self._env(env)
        check_ident(kind, what="operation kind")
        for _attempt in range(3):  # an id clash needs the same minute and 24 random bits
            at = now()
            row = OperationRow(
                id=op_id or new_operation_id(at),
                env=env,
                kind=kind,
                status="running",
                actor=self._me.user,
                pid=self._me.pid,
                host=self._me.host,
                plan=plan,
                started_at=at,
                finished_at=None,
                error=None,
            )
            try:
                with self._write() as s:
                    s.add(row)
                    s.execute(
                        update(EnvironmentRow)
                        .where(EnvironmentRow.name == env)
                        .values(last_operation_id=row.id, updated_at=at)
                    )
                    s.flush()
                    return _operation(row, steps=False)
            except IntegrityError:
                if op_id is not None:
                    raise EnvplaneError(f"operation id {op_id} is taken", hint="retry") from None
                continue
        raise EnvplaneError("could not allocate an operation id", hint="retry")

    def resume_operation(self, op_id: str) -> OperationRecord:
        """Mark a failed or abandoned operation running again, now owned by this process."""
        with self._write() as s:
            row = s.get(OperationRow, op_id, options=[selectinload(OperationRow.steps)])
            if row is None:
                raise _unknown(op_id)
            row.status, row.finished_at, row.error = "running", None, None
            row.pid, row.host, row.actor = self._me.pid, self._me.host, self._me.user
            s.flush()
            return _operation(row)

    def start_step(self, op_id: str, index: int, resource_key: str, action: StepAction) -> None:
        check_choice(action, STEP_ACTIONS, what="step action")
        with self._write() as s:
            if s.get(OperationRow, op_id) is None:
                raise _unknown(op_id)
            row = s.get(StepRow, (op_id, index))
            if row is None:
                s.add(
                    StepRow(
                        operation_id=op_id,
                        index=index,
                        resource_key=resource_key,
                        action=action,
                        status="running",
                        detail="",
                        started_at=now(),
                        finished_at=None,
                    )
                )
            else:  # a resumed operation runs the step again
                row.resource_key, row.action, row.status = resource_key, action, "running"
                row.detail, row.started_at, row.finished_at = "", now(), None

    def finish_step(self, op_id: str, index: int, status: StepStatus, detail: str = "") -> None:
        check_choice(status, STEP_STATUSES, what="step status")
        with self._write() as s:
            row = s.get(StepRow, (op_id, index))
            if row is None:
                raise BadInput(f"operation {op_id!r} has no started step {index}")
            row.status, row.detail, row.finished_at = status, detail, now()

    def finish_operation(
        self, op_id: str, status: OperationStatus, error: str | None = None
    ) -> None:
        check_choice(status, OPERATION_STATUSES, what="operation status")
        with self._write() as s:
            row = s.get(OperationRow, op_id)
            if row is None:
                raise _unknown(op_id)
            row.status, row.error = status, error
            row.finished_at = None if status == "running" else now()

    def get_operation(self, op_id: str) -> OperationRecord | None:
        with self._read() as s:
            row = s.get(OperationRow, op_id, options=[selectinload(OperationRow.steps)])
            return None if row is None else _operation(row)

    def operations(self, env: str | None = None, limit: int = 50) -> list[OperationRecord]:
        """Newest first, each with its steps."""
        query = (
            select(OperationRow)
            .options(selectinload(OperationRow.steps))
            .order_by(OperationRow.started_at.desc(), OperationRow.id.desc())
            .limit(limit)
        )
        if env is not None:
            query = query.where(OperationRow.env == self._env(env))
        with self._read() as s:
            return [_operation(row) for row in s.scalars(query)]
