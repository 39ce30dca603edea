"""What the store keeps of an environment, as text: every stored document a clear secret could
have slipped into (resource specs, the journal, saved plans, the audit trail), each named.

Read only, for validation ("the state store holds no clear secret"): the documents are JSON as
the database holds them, searched by the caller for values it never shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select

from envplane.state.base import StoreBase
from envplane.state.db import make_engine
from envplane.state.models import (
    AuditRow,
    EnvironmentRow,
    OperationRow,
    PlanRow,
    ResourceRow,
    StepRow,
)
from envplane.state.procs import me


@dataclass(frozen=True)
class StoredDocument:
    where: str  # "resource service/api spec", "audit #12 (create)", ...: never its content
    text: str


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


class DocumentsMixin(StoreBase):
    def stored_documents(self, env: str) -> Iterator[StoredDocument]:
        """Every document the store keeps about `env` (and the audit lines naming no
        environment), as text. Secrets are not among them: the vault holds ciphertext only."""
        name = self._env(env)
        with self._read() as s:
            record = s.get(EnvironmentRow, name)
            if record is not None:
                yield StoredDocument(
                    "environment record (ports, definition)",
                    _json({"ports": record.ports, "definition": record.definition}),
                )
            for res in s.scalars(select(ResourceRow).where(ResourceRow.env == name)):
                yield StoredDocument(f"resource {res.key} spec", _json(res.spec))
            ops = select(OperationRow).where(OperationRow.env == name)
            for op in s.scalars(ops.order_by(OperationRow.started_at)):
                yield StoredDocument(f"operation {op.id} plan", _json(op.plan))
                if op.error:
                    yield StoredDocument(f"operation {op.id} error", op.error)
            steps = (
                select(StepRow)
                .join(OperationRow, StepRow.operation_id == OperationRow.id)
                .where(OperationRow.env == name)
            )
            for step in s.scalars(steps):
                if step.detail:
                    yield StoredDocument(
                        f"operation {step.operation_id} step {step.index} detail", step.detail
                    )
            for plan in s.scalars(select(PlanRow).where(PlanRow.env == name)):
                yield StoredDocument(
                    f"saved plan {plan.id}", _json({"request": plan.request, "plan": plan.plan})
                )
            audit = select(AuditRow).where(or_(AuditRow.env == name, AuditRow.env.is_(None)))
            for line in s.scalars(audit.order_by(AuditRow.id)):
                yield StoredDocument(f"audit #{line.id} ({line.action})", line.detail)


def read_stored_documents(url: str, env: str) -> list[StoredDocument]:
    """`stored_documents(env)` of the store at `url`, read without opening (migrating) it:
    for a check that has the URL and not the store."""
    engine = make_engine(url)
    try:
        return list(DocumentsMixin(engine, Path("."), me()).stored_documents(env))
    finally:
        engine.dispose()
