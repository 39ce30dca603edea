"""Promotions and the decisions on them, and validation results (a promotion's gate).

The store records; it does not decide: one decision per actor per promotion is all it
enforces. Four eyes and when a promotion is approved are the delivery layer's."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from envplane.errors import BadInput, EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, check_choice, now
from envplane.state.models import (
    ApprovalRow,
    PromotionRow,
    ReleaseRow,
    ValidationRow,
)
from envplane.state.records import (
    DECISIONS,
    PROMOTION_STATUSES,
    ApprovalRecord,
    Decision,
    PromotionRecord,
    PromotionStatus,
    ValidationRecord,
)
from envplane.state.releases import (
    _no_release,
    _short,
    _stamp,
    check_id,
    check_release_id,
)
from envplane.state.rollouts import check_rollout_id

PROMOTION_ID = re.compile(r"^prm-\d{8}-\d{6}-[0-9a-f]{6}$")


def check_promotion_id(promotion_id: str) -> str:
    return check_id(
        promotion_id,
        PROMOTION_ID,
        "promotion id",
        "a promotion id looks like prm-20261201-091500-ab12cd "
        "(printed when the promotion is requested)",
    )


def _approval(row: ApprovalRow) -> ApprovalRecord:
    return ApprovalRecord(
        promotion_id=row.promotion_id,
        actor=row.actor,
        decision=row.decision,  # type: ignore[arg-type]  # guarded by a CHECK constraint
        at=row.at,
        message=row.message,
    )


def _promotion(row: PromotionRow, decisions: list[ApprovalRow]) -> PromotionRecord:
    return PromotionRecord(
        id=row.id,
        release_id=row.release_id,
        env=row.env,
        from_env=row.from_env,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,  # type: ignore[arg-type]  # guarded by a CHECK constraint
        approvals_needed=row.approvals_needed,
        rollout_id=row.rollout_id,
        message=row.message,
        decisions=tuple(_approval(d) for d in decisions),
    )


def _validation(row: ValidationRow) -> ValidationRecord:
    return ValidationRecord(
        id=row.id,
        env=row.env,
        level=row.level,
        release_id=row.release_id,
        passed=bool(row.passed),
        at=row.at,
        actor=row.actor,
        summary=dict(row.summary),
    )


def _decisions(s: Session, promotion_ids: list[str]) -> dict[str, list[ApprovalRow]]:
    found: dict[str, list[ApprovalRow]] = {pid: [] for pid in promotion_ids}
    if promotion_ids:
        query = (
            select(ApprovalRow)
            .where(ApprovalRow.promotion_id.in_(promotion_ids))
            .order_by(ApprovalRow.at, ApprovalRow.actor)
        )
        for row in s.scalars(query):
            found[row.promotion_id].append(row)
    return found


def _no_promotion(promotion_id: str) -> EnvplaneError:
    return BadInput(
        f"no promotion {promotion_id!r} in the state store",
        hint="a promotion's id is printed when it is requested",
    )


class PromotionsMixin(StoreBase):
    # Validations ---------------------------------------------------------------------------

    def record_validation(
        self,
        env: str,
        *,
        level: str,
        passed: bool,
        release_id: str | None,
        summary: dict[str, Any],
    ) -> ValidationRecord:
        self._env(env)
        check_ident(_short(level, 16, what="validation level"), what="validation level")
        if release_id is not None:
            check_release_id(release_id)
        row = ValidationRow(
            env=env,
            level=level,
            release_id=release_id,
            passed=bool(passed),
            at=now(),
            actor=self._me.user,
            summary=dict(summary),
        )
        with self._write() as s:
            s.add(row)
            s.flush()
            return _validation(row)

    def validations(self, env: str, limit: int = 20) -> list[ValidationRecord]:
        """Newest first."""
        query = (
            select(ValidationRow)
            .where(ValidationRow.env == self._env(env))
            .order_by(ValidationRow.id.desc())
            .limit(limit)
        )
        with self._read() as s:
            return [_validation(row) for row in s.scalars(query)]

    # Promotions ----------------------------------------------------------------------------

    def create_promotion(
        self,
        release_id: str,
        env: str,
        *,
        from_env: str | None,
        approvals_needed: int,
        message: str | None = None,
    ) -> PromotionRecord:
        """Record a pending request to deploy a recorded release into `env`."""
        check_release_id(release_id)
        self._env(env)
        if from_env is not None:
            self._env(from_env)
        if isinstance(approvals_needed, bool) or not isinstance(approvals_needed, int):
            raise BadInput(f"invalid number of approvals {approvals_needed!r}")
        if approvals_needed < 0:
            raise BadInput(f"invalid number of approvals {approvals_needed}: use 0 or more")
        for _attempt in range(3):  # an id clash needs the same second and 24 random bits
            at = now()
            row = PromotionRow(
                id=_stamp("prm", at),
                release_id=release_id,
                env=env,
                from_env=from_env,
                requested_by=self._me.user,
                requested_at=at,
                status="pending",
                approvals_needed=approvals_needed,
                rollout_id=None,
                message=message,
            )
            try:
                with self._write() as s:
                    if s.get(ReleaseRow, release_id) is None:
                        raise _no_release(release_id)
                    s.add(row)
                    s.flush()
                    return _promotion(row, [])
            except IntegrityError:
                continue
        raise EnvplaneError("could not allocate a promotion id", hint="retry")

    def get_promotion(self, promotion_id: str) -> PromotionRecord | None:
        check_promotion_id(promotion_id)
        with self._read() as s:
            row = s.get(PromotionRow, promotion_id)
            if row is None:
                return None
            return _promotion(row, _decisions(s, [promotion_id])[promotion_id])

    def promotions(
        self, env: str | None = None, status: PromotionStatus | None = None, limit: int = 50
    ) -> list[PromotionRecord]:
        """Newest first, each with its decisions."""
        query = (
            select(PromotionRow)
            .order_by(PromotionRow.requested_at.desc(), PromotionRow.id.desc())
            .limit(limit)
        )
        if env is not None:
            query = query.where(PromotionRow.env == self._env(env))
        if status is not None:
            check_choice(status, PROMOTION_STATUSES, what="promotion status")
            query = query.where(PromotionRow.status == status)
        with self._read() as s:
            rows = list(s.scalars(query))
            decisions = _decisions(s, [row.id for row in rows])
            return [_promotion(row, decisions[row.id]) for row in rows]

    def add_decision(
        self, promotion_id: str, decision: Decision, message: str | None = None
    ) -> PromotionRecord:
        """This actor's one decision on a promotion; its status is the delivery layer's."""
        check_promotion_id(promotion_id)
        check_choice(decision, DECISIONS, what="decision")
        actor = self._me.user
        already = BadInput(
            f"{actor} already decided on promotion {promotion_id}",
            hint="each person decides once on a promotion; ask another approver",
        )
        try:
            with self._write() as s:
                row = s.get(PromotionRow, promotion_id)
                if row is None:
                    raise _no_promotion(promotion_id)
                if s.get(ApprovalRow, (promotion_id, actor)) is not None:
                    raise already
                s.add(
                    ApprovalRow(
                        promotion_id=promotion_id,
                        actor=actor,
                        decision=decision,
                        at=now(),
                        message=message,
                    )
                )
                s.flush()
                return _promotion(row, _decisions(s, [promotion_id])[promotion_id])
        except IntegrityError:  # the same actor deciding twice at once
            raise already from None

    def set_promotion_status(
        self, promotion_id: str, status: PromotionStatus, *, rollout_id: str | None = None
    ) -> PromotionRecord:
        """Set its status and, when given, the rollout that deploys it."""
        check_promotion_id(promotion_id)
        check_choice(status, PROMOTION_STATUSES, what="promotion status")
        if rollout_id is not None:
            check_rollout_id(rollout_id)
        with self._write() as s:
            row = s.get(PromotionRow, promotion_id)
            if row is None:
                raise _no_promotion(promotion_id)
            row.status = status
            if rollout_id is not None:
                row.rollout_id = rollout_id
            s.flush()
            return _promotion(row, _decisions(s, [promotion_id])[promotion_id])
