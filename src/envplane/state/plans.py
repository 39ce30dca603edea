"""Saved plans: what `envplane plan --save` computed, kept so `envplane apply` runs exactly it.

A plan row is written once and only ever marked applied; applying checks its fingerprint
against a fresh one, so a plan made stale by a changed matrix or world is refused.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import update

from envplane.errors import BadInput
from envplane.names import check_ident
from envplane.state.base import StoreBase, now
from envplane.state.models import PlanRow
from envplane.state.records import SavedPlanRecord

PLAN_ID = re.compile(r"^plan-\d{8}-\d{4}-[0-9a-f]{6}$")


def check_plan_id(plan_id: str) -> str:
    if not PLAN_ID.match(plan_id):
        raise BadInput(
            f"invalid plan id {plan_id!r}",
            hint="a plan id looks like plan-20261201-0915-ab12cd (printed by `plan --save`)",
        )
    return plan_id


def _record(row: PlanRow) -> SavedPlanRecord:
    return SavedPlanRecord(
        id=row.id,
        env=row.env,
        kind=row.kind,
        request=dict(row.request),
        plan=dict(row.plan),
        fingerprint=row.fingerprint,
        actor=row.actor,
        created_at=row.created_at,
        applied_operation_id=row.applied_operation_id,
    )


class PlansMixin(StoreBase):
    def save_plan(
        self,
        env: str,
        kind: str,
        *,
        request: dict[str, Any],
        plan: dict[str, Any],
        fingerprint: str,
    ) -> SavedPlanRecord:
        self._env(env)
        check_ident(kind, what="operation kind")
        at = now()
        row = PlanRow(
            id=f"plan-{at:%Y%m%d-%H%M}-{secrets.token_hex(3)}",
            env=env,
            kind=kind,
            request=request,
            plan=plan,
            fingerprint=fingerprint,
            actor=self._me.user,
            created_at=at,
            applied_operation_id=None,
        )
        with self._write() as s:
            s.add(row)
            s.flush()
            return _record(row)

    def get_plan(self, plan_id: str) -> SavedPlanRecord | None:
        with self._read() as s:
            row = s.get(PlanRow, check_plan_id(plan_id))
            return None if row is None else _record(row)

    def mark_plan_applied(self, plan_id: str, op_id: str) -> bool:
        """Claim the plan for one operation; False when another apply claimed it first."""
        with self._write() as s:
            done = s.execute(
                update(PlanRow)
                .where(PlanRow.id == plan_id, PlanRow.applied_operation_id.is_(None))
                .values(applied_operation_id=op_id)
            )
            return bool(getattr(done, "rowcount", 0))

    def set_plan_operation(self, plan_id: str, op_id: str | None) -> None:
        """The operation that applied a claimed plan (None: unclaimed again)."""
        with self._write() as s:
            s.execute(
                update(PlanRow).where(PlanRow.id == plan_id).values(applied_operation_id=op_id)
            )
