"""Rollouts of releases into environments, and what is live in each (with the old color a
blue-green keeps). The store records; the delivery layer decides what a rollout does next."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from envplane.errors import BadInput, EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, check_choice, now
from envplane.state.models import (
    LiveRow,
    ReleaseRow,
    RolloutRow,
)
from envplane.state.records import (
    COLORS,
    ROLLOUT_KINDS,
    ROLLOUT_STATUSES,
    LiveRecord,
    RolloutKind,
    RolloutRecord,
    RolloutStatus,
)
from envplane.state.releases import (
    _no_release,
    _short,
    check_id,
    check_release_id,
)

# A rollout's id is the id of the operation that performs it (state.journal.new_operation_id).
ROLLOUT_ID = re.compile(r"^op-\d{8}-\d{4}-[0-9a-f]{6}$")
ACTIVE: tuple[RolloutStatus, ...] = ("running", "paused")


def check_rollout_id(rollout_id: str) -> str:
    return check_id(
        rollout_id,
        ROLLOUT_ID,
        "rollout id",
        "a rollout's id is its operation's, like op-20261201-0915-ab12cd "
        "(`envplane history` lists them)",
    )


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


class RolloutsMixin(StoreBase):
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
