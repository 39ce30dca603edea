"""The audit trail: who did what to which environment, kept after it is destroyed."""

from __future__ import annotations

from sqlalchemy import select

from envplane.state.base import StoreBase, now
from envplane.state.models import AuditRow
from envplane.state.records import AuditRecord


class AuditMixin(StoreBase):
    def audit(self, env: str | None, action: str, detail: str) -> None:
        if env is not None:
            self._env(env)
        with self._write() as s:
            s.add(AuditRow(at=now(), actor=self._me.user, env=env, action=action, detail=detail))

    def audit_log(self, env: str | None = None, limit: int = 100) -> list[AuditRecord]:
        """Newest first."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if env is not None:
            query = query.where(AuditRow.env == self._env(env))
        with self._read() as s:
            return [
                AuditRecord(
                    id=r.id, at=r.at, actor=r.actor, env=r.env, action=r.action, detail=r.detail
                )
                for r in s.scalars(query)
            ]
