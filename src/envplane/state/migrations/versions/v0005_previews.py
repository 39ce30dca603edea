"""Previews: which environments are per-branch previews, their branch, source, creator,
lifetime, and whether they are awake or asleep (with the awake time so far, for cost).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

STATES = ("awake", "asleep")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "previews",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("branch", sa.Text(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("creator", sa.String(128), nullable=False, index=True),
        _ts("created_at"),
        _ts("expires_at"),
        sa.Column("state", sa.String(8), nullable=False),
        _ts("state_since"),
        # Seconds awake before `state_since` (the current stretch is added when it ends).
        sa.Column("awake_seconds", sa.Float(), nullable=False),
        _ts("ended_at", nullable=True),  # destroyed; the row stays as history
        sa.CheckConstraint("state IN ('awake', 'asleep')", name="ck_preview_state"),
    )


def downgrade() -> None:
    op.drop_table("previews")
