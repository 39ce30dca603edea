"""Previews (migration 0005): which environments are per-branch previews, for whom, until
when, and whether they are awake. The environment itself is an ordinary one (a derived
environment, `environments.definition`); this row is what makes it a preview.

Awake time is kept as a sum plus the start of the current stretch, so "cost so far" needs no
sampling: awake seconds = awake_seconds + (now - state_since while awake).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import CheckConstraint, Float, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from envplane.errors import BadInput
from envplane.state.base import StoreBase, now
from envplane.state.models import NAME, Base

PREVIEW_STATES = ("awake", "asleep")
MAX_BRANCH = 1000


class PreviewRow(Base):
    __tablename__ = "previews"
    __table_args__ = (CheckConstraint("state IN ('awake', 'asleep')", name="ck_preview_state"),)

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    branch: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(NAME))
    creator: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(8))
    state_since: Mapped[datetime]
    awake_seconds: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[datetime | None]


@dataclass(frozen=True)
class PreviewRecord:
    env: str
    branch: str
    source: str
    creator: str
    created_at: datetime
    expires_at: datetime
    state: str  # awake | asleep
    state_since: datetime
    awake_seconds: float  # before state_since
    ended_at: datetime | None

    def awake_so_far(self, at: datetime | None = None) -> float:
        """Seconds this preview has been awake, up to `at` (default now)."""
        extra = 0.0
        if self.state == "awake" and self.ended_at is None:
            extra = max(0.0, ((at or now()) - self.state_since).total_seconds())
        return self.awake_seconds + extra

    def seconds_left(self, at: datetime | None = None) -> float:
        return (self.expires_at - (at or now())).total_seconds()


def _record(row: PreviewRow) -> PreviewRecord:
    return PreviewRecord(
        env=row.env,
        branch=row.branch,
        source=row.source,
        creator=row.creator,
        created_at=row.created_at,
        expires_at=row.expires_at,
        state=row.state,
        state_since=row.state_since,
        awake_seconds=row.awake_seconds,
        ended_at=row.ended_at,
    )


def _branch(branch: str) -> str:
    if not isinstance(branch, str) or not branch or len(branch) > MAX_BRANCH:
        raise BadInput(f"invalid branch {branch!r}: use 1 to {MAX_BRANCH} characters")
    return branch


class PreviewsMixin(StoreBase):
    def record_preview(
        self, env: str, *, branch: str, source: str, expires_at: datetime
    ) -> PreviewRecord:
        """A new preview (awake from now), or the same environment recorded again after it
        was destroyed; the creator is this process's OS user (or the store's actor)."""
        at = now()
        with self._write() as s:
            row = s.get(PreviewRow, self._env(env))
            if row is None:
                row = PreviewRow(env=env)
                s.add(row)
            row.branch = _branch(branch)
            row.source = self._env(source)
            row.creator = self._me.user
            row.created_at = at
            row.expires_at = expires_at
            row.state = "awake"
            row.state_since = at
            row.awake_seconds = 0.0
            row.ended_at = None
            s.flush()
            return _record(row)

    def get_preview(self, env: str) -> PreviewRecord | None:
        with self._read() as s:
            row = s.get(PreviewRow, self._env(env))
            return None if row is None else _record(row)

    def previews(self, *, include_ended: bool = False) -> list[PreviewRecord]:
        """Oldest first."""
        query = select(PreviewRow).order_by(PreviewRow.created_at, PreviewRow.env)
        if not include_ended:
            query = query.where(PreviewRow.ended_at.is_(None))
        with self._read() as s:
            return [_record(row) for row in s.scalars(query)]

    def set_preview_expiry(self, env: str, expires_at: datetime) -> PreviewRecord:
        with self._write() as s:
            row = self._live_preview(s.get(PreviewRow, self._env(env)), env)
            row.expires_at = expires_at
            return _record(row)

    def set_preview_state(self, env: str, state: str) -> PreviewRecord:
        """awake | asleep; the stretch that ends is added to the awake time."""
        if state not in PREVIEW_STATES:
            raise BadInput(f"invalid preview state {state!r}: use awake or asleep")
        at = now()
        with self._write() as s:
            row = self._live_preview(s.get(PreviewRow, self._env(env)), env)
            if row.state == state:
                return _record(row)
            if row.state == "awake":
                row.awake_seconds += max(0.0, (at - row.state_since).total_seconds())
            row.state, row.state_since = state, at
            return _record(row)

    def end_preview(self, env: str) -> None:
        """The preview's environment was destroyed: the row stays, as history."""
        at = now()
        with self._write() as s:
            row = s.get(PreviewRow, self._env(env))
            if row is None or row.ended_at is not None:
                return
            if row.state == "awake":
                row.awake_seconds += max(0.0, (at - row.state_since).total_seconds())
            row.ended_at = at

    def drop_preview(self, env: str) -> None:
        """Forget a preview whose environment was never recorded (its create was refused)."""
        with self._write() as s:
            row = s.get(PreviewRow, self._env(env))
            if row is not None:
                s.delete(row)

    @staticmethod
    def _live_preview(row: PreviewRow | None, env: str) -> PreviewRow:
        if row is None or row.ended_at is not None:
            raise BadInput(
                f"{env!r} is not a preview",
                hint="`envplane preview list` shows the previews",
            )
        return row


__all__ = ["PREVIEW_STATES", "PreviewRecord", "PreviewsMixin"]
