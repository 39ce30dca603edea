"""Delivery: releases, their rollouts into environments, what is live, promotions and the
decisions on them, and validation results.

The store records; it does not decide. Who may approve (four eyes), when a promotion is
approved and what a rollout does next are the delivery layer's: here a promotion takes one
decision per actor, and nothing more is enforced.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from envplane.errors import BadInput, EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, check_choice, now
from envplane.state.models import (
    ApprovalRow,
    LiveRow,
    PromotionRow,
    ReleaseRow,
    RolloutRow,
    ValidationRow,
)
from envplane.state.records import (
    COLORS,
    DECISIONS,
    PROMOTION_STATUSES,
    ROLLOUT_KINDS,
    ROLLOUT_STATUSES,
    ApprovalRecord,
    Decision,
    LiveRecord,
    PromotionRecord,
    PromotionStatus,
    ReleaseRecord,
    RolloutKind,
    RolloutRecord,
    RolloutStatus,
    ValidationRecord,
)

RELEASE_ID = re.compile(r"^rel-\d{8}-\d{6}-[0-9a-f]{6}$")
PROMOTION_ID = re.compile(r"^prm-\d{8}-\d{6}-[0-9a-f]{6}$")
# A rollout's id is the id of the operation that performs it (state.journal.new_operation_id).
ROLLOUT_ID = re.compile(r"^op-\d{8}-\d{4}-[0-9a-f]{6}$")
ACTIVE: tuple[RolloutStatus, ...] = ("running", "paused")


def check_release_id(release_id: str) -> str:
    if not isinstance(release_id, str) or not RELEASE_ID.match(release_id):
        raise BadInput(
            f"invalid release id {release_id!r}",
            hint="a release id looks like rel-20261201-091500-ab12cd "
            "(printed by `envplane release create`)",
        )
    return release_id


def check_promotion_id(promotion_id: str) -> str:
    if not isinstance(promotion_id, str) or not PROMOTION_ID.match(promotion_id):
        raise BadInput(
            f"invalid promotion id {promotion_id!r}",
            hint="a promotion id looks like prm-20261201-091500-ab12cd "
            "(printed when the promotion is requested)",
        )
    return promotion_id


def check_rollout_id(rollout_id: str) -> str:
    if not isinstance(rollout_id, str) or not ROLLOUT_ID.match(rollout_id):
        raise BadInput(
            f"invalid rollout id {rollout_id!r}",
            hint="a rollout's id is its operation's, like op-20261201-0915-ab12cd "
            "(`envplane history` lists them)",
        )
    return rollout_id


def _short(value: str, limit: int, *, what: str) -> str:
    """A free-text value that must fit its column (SQLite would not say)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadInput(f"invalid {what} {value!r}: use 1 to {limit} characters")
    return value


def _stamp(prefix: str, at: datetime) -> str:
    return f"{prefix}-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _services(services: Mapping[str, str]) -> dict[str, str]:
    clean = {}
    for name, version in services.items():
        check_ident(name, what="service name")
        clean[name] = _short(version, 128, what=f"version of service {name!r}")
    return clean


def _placed(services: Mapping[str, Mapping[str, Any]], *, what: str) -> dict[str, dict[str, Any]]:
    """{service: {"version": ..., "color": "blue"|"green", ...}}, checked and copied."""
    clean = {}
    for name, placed in services.items():
        check_ident(name, what="service name")
        if not isinstance(placed, Mapping):
            raise BadInput(f"invalid {what} of service {name!r}: {placed!r} is not a mapping")
        if "color" in placed:
            check_choice(placed["color"], COLORS, what=f"color of service {name!r}")
        clean[name] = dict(placed)
    return clean


def _release(row: ReleaseRow) -> ReleaseRecord:
    return ReleaseRecord(
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
        services=dict(row.services),
        config_digest=row.config_digest,
        source_env=row.source_env,
    )


def _rollout(row: RolloutRow) -> RolloutRecord:
    return RolloutRecord(
        id=row.id,
        env=row.env,
        release_id=row.release_id,
        kind=row.kind,  # type: ignore[arg-type]  # guarded by CHECK constraints
        strategy=row.strategy,
        status=row.status,  # type: ignore[arg-type]
        phase=row.phase,
        actor=row.actor,
        started_at=row.started_at,
        finished_at=row.finished_at,
        previous_release_id=row.previous_release_id,
        detail=dict(row.detail),
    )


def _live(row: LiveRow) -> LiveRecord:
    return LiveRecord(
        env=row.env,
        release_id=row.release_id,
        services={k: dict(v) for k, v in row.services.items()},
        since=row.since,
        rollout_id=row.rollout_id,
        retained={k: dict(v) for k, v in row.retained.items()},
        previous_release_id=row.previous_release_id,
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


def _no_release(release_id: str) -> EnvplaneError:
    return BadInput(
        f"no release {release_id!r} in the state store",
        hint="a release is recorded by `envplane release create`, which prints its id",
    )


def _no_promotion(promotion_id: str) -> EnvplaneError:
    return BadInput(
        f"no promotion {promotion_id!r} in the state store",
        hint="a promotion's id is printed when it is requested",
    )


class DeliveryMixin(StoreBase):
    # Releases ------------------------------------------------------------------------------

    def create_release(
        self,
        services: dict[str, str],
        *,
        config_digest: str,
        note: str | None = None,
        source_env: str | None = None,
    ) -> ReleaseRecord:
        clean = _services(services)
        _short(config_digest, 64, what="config digest")
        if source_env is not None:
            self._env(source_env)
        for _attempt in range(3):  # an id clash needs the same second and 24 random bits
            at = now()
            row = ReleaseRow(
                id=_stamp("rel", at),
                created_at=at,
                created_by=self._me.user,
                note=note,
                services=clean,
                config_digest=config_digest,
                source_env=source_env,
            )
            try:
                with self._write() as s:
                    s.add(row)
                    s.flush()
                    return _release(row)
            except IntegrityError:
                continue
        raise EnvplaneError("could not allocate a release id", hint="retry")

    def get_release(self, release_id: str) -> ReleaseRecord | None:
        with self._read() as s:
            row = s.get(ReleaseRow, check_release_id(release_id))
            return None if row is None else _release(row)

    def releases(self, limit: int = 50) -> list[ReleaseRecord]:
        """Newest first."""
        query = (
            select(ReleaseRow)
            .order_by(ReleaseRow.created_at.desc(), ReleaseRow.id.desc())
            .limit(limit)
        )
        with self._read() as s:
            return [_release(row) for row in s.scalars(query)]

    # Rollouts ------------------------------------------------------------------------------

    def start_rollout(
        self,
        op_id: str,
        env: str,
        release_id: str,
        *,
        kind: RolloutKind,
        strategy: str,
        previous_release_id: str | None,
        detail: dict[str, Any] | None = None,
    ) -> RolloutRecord:
        """Record a running rollout of a recorded release, under its operation's id."""
        check_rollout_id(op_id)
        self._env(env)
        check_release_id(release_id)
        check_choice(kind, ROLLOUT_KINDS, what="rollout kind")
        check_ident(_short(strategy, 16, what="rollout strategy"), what="rollout strategy")
        if previous_release_id is not None:
            check_release_id(previous_release_id)
        row = RolloutRow(
            id=op_id,
            env=env,
            release_id=release_id,
            kind=kind,
            strategy=strategy,
            status="running",
            phase="start",
            actor=self._me.user,
            started_at=now(),
            finished_at=None,
            previous_release_id=previous_release_id,
            detail=dict(detail or {}),
        )
        try:
            with self._write() as s:
                if s.get(ReleaseRow, release_id) is None:
                    raise _no_release(release_id)
                s.add(row)
                s.flush()
                return _rollout(row)
        except IntegrityError:
            raise EnvplaneError(f"rollout {op_id} is already recorded", hint="retry") from None

    def update_rollout(
        self,
        rollout_id: str,
        *,
        status: RolloutStatus | None = None,
        phase: str | None = None,
        detail: dict[str, Any] | None = None,
        finished: bool = False,
    ) -> RolloutRecord:
        """Change only what is given; `detail` is merged into the recorded one; `finished`
        stamps the end time."""
        check_rollout_id(rollout_id)
        if status is not None:
            check_choice(status, ROLLOUT_STATUSES, what="rollout status")
        if phase is not None:
            _short(phase, 32, what="rollout phase")
        with self._write() as s:
            row = s.get(RolloutRow, rollout_id)
            if row is None:
                raise BadInput(f"no rollout {rollout_id!r} in the state store")
            if status is not None:
                row.status = status
            if phase is not None:
                row.phase = phase
            if detail:
                row.detail = {**row.detail, **detail}  # a new dict: the JSON column sees it
            if finished:
                row.finished_at = now()
            s.flush()
            return _rollout(row)

    def get_rollout(self, rollout_id: str) -> RolloutRecord | None:
        with self._read() as s:
            row = s.get(RolloutRow, check_rollout_id(rollout_id))
            return None if row is None else _rollout(row)

    def rollouts(self, env: str | None = None, limit: int = 50) -> list[RolloutRecord]:
        """Newest first."""
        query = (
            select(RolloutRow)
            .order_by(RolloutRow.started_at.desc(), RolloutRow.id.desc())
            .limit(limit)
        )
        if env is not None:
            query = query.where(RolloutRow.env == self._env(env))
        with self._read() as s:
            return [_rollout(row) for row in s.scalars(query)]

    def active_rollout(self, env: str) -> RolloutRecord | None:
        """The latest rollout into `env` still running or paused, if any."""
        query = (
            select(RolloutRow)
            .where(RolloutRow.env == self._env(env), RolloutRow.status.in_(ACTIVE))
            .order_by(RolloutRow.started_at.desc(), RolloutRow.id.desc())
            .limit(1)
        )
        with self._read() as s:
            row = s.scalars(query).first()
            return None if row is None else _rollout(row)

    # What is live --------------------------------------------------------------------------

    def get_live(self, env: str) -> LiveRecord | None:
        with self._read() as s:
            row = s.get(LiveRow, self._env(env))
            return None if row is None else _live(row)

    def set_live(
        self,
        env: str,
        *,
        release_id: str | None,
        services: dict[str, dict[str, Any]],
        rollout_id: str | None,
        retained: dict[str, dict[str, Any]] | None = None,
        previous_release_id: str | None = None,
    ) -> LiveRecord:
        """Insert or replace what runs in `env` (every field; `since` is now)."""
        self._env(env)
        for rid in (release_id, previous_release_id):
            if rid is not None:
                check_release_id(rid)
        if rollout_id is not None:
            check_rollout_id(rollout_id)
        placed = _placed(services, what="live placement")
        kept = _placed(retained or {}, what="retained placement")
        for attempt in range(2):
            try:
                with self._write() as s:
                    row = s.get(LiveRow, env)
                    if row is None:
                        row = LiveRow(env=env)
                        s.add(row)
                    row.release_id, row.services, row.since = release_id, placed, now()
                    row.rollout_id, row.retained = rollout_id, kept
                    row.previous_release_id = previous_release_id
                    s.flush()
                    return _live(row)
            except IntegrityError:
                if attempt:  # two first sets raced on PostgreSQL; the second one updates
                    raise
        raise AssertionError("unreachable")

    def set_retained(self, env: str, retained: dict[str, dict[str, Any]]) -> LiveRecord:
        """Replace the old colors kept for a fast rollback ({} forgets them)."""
        self._env(env)
        kept = _placed(retained, what="retained placement")
        with self._write() as s:
            row = s.get(LiveRow, env)
            if row is None:
                raise BadInput(f"nothing is live in {env!r}: no retained colors to record")
            row.retained = kept
            s.flush()
            return _live(row)

    def clear_live(self, env: str) -> None:
        """Forget what runs in `env` (it was destroyed); nothing to forget is fine."""
        self._env(env)
        with self._write() as s:
            s.execute(delete(LiveRow).where(LiveRow.env == env))

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
