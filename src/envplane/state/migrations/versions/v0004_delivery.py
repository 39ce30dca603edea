"""Delivery: releases, their rollouts into environments, what is live, promotions and their
approvals, validation results; steps journal the delivery actions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

OLD_ACTIONS = (
    "create",
    "update",
    "delete",
    "noop",
    "stop",
    "start",
    "copy",
    "import",
    "export",
    "mask",
)
# Delivery steps: switch traffic, analyze a canary, migrate a schema, wait out a pause.
ACTIONS = (*OLD_ACTIONS, "route", "analyze", "migrate", "wait")
ROLLOUT_KINDS = ("deploy", "rollback")
ROLLOUT_STATUSES = ("running", "paused", "succeeded", "failed", "rolled_back")
PROMOTION_STATUSES = ("pending", "approved", "rejected", "deployed", "failed")
DECISIONS = ("approve", "reject")
TABLES = ("validations", "approvals", "promotions", "live", "rollouts", "releases")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_constraint("ck_step_action", type_="check")
        batch.create_check_constraint("ck_step_action", _one_of("action", ACTIONS))
    op.create_table(
        "releases",
        sa.Column("id", sa.String(40), primary_key=True),
        _ts("created_at"),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("services", sa.JSON(), nullable=False),
        sa.Column("config_digest", sa.String(64), nullable=False),
        sa.Column("source_env", sa.String(64), nullable=True),
    )
    op.create_table(
        "rollouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("env", sa.String(64), nullable=False, index=True),
        sa.Column("release_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.Column("previous_release_id", sa.String(40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.CheckConstraint(_one_of("kind", ROLLOUT_KINDS), name="ck_rollout_kind"),
        sa.CheckConstraint(_one_of("status", ROLLOUT_STATUSES), name="ck_rollout_status"),
    )
    op.create_table(
        "live",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("release_id", sa.String(40), nullable=True),
        sa.Column("services", sa.JSON(), nullable=False),
        _ts("since"),
        sa.Column("rollout_id", sa.String(40), nullable=True),
        sa.Column("retained", sa.JSON(), nullable=False),
        sa.Column("previous_release_id", sa.String(40), nullable=True),
    )
    op.create_table(
        "promotions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("release_id", sa.String(40), nullable=False),
        sa.Column("env", sa.String(64), nullable=False, index=True),
        sa.Column("from_env", sa.String(64), nullable=True),
        sa.Column("requested_by", sa.String(128), nullable=False),
        _ts("requested_at"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approvals_needed", sa.Integer(), nullable=False),
        sa.Column("rollout_id", sa.String(40), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint(_one_of("status", PROMOTION_STATUSES), name="ck_promotion_status"),
    )
    op.create_table(
        "approvals",
        sa.Column("promotion_id", sa.String(40), primary_key=True),
        sa.Column("actor", sa.String(128), primary_key=True),
        sa.Column("decision", sa.String(8), nullable=False),
        _ts("at"),
        sa.Column("message", sa.Text(), nullable=True),
        sa.CheckConstraint(_one_of("decision", DECISIONS), name="ck_approval_decision"),
    )
    op.create_table(
        "validations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(64), nullable=False, index=True),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("release_id", sa.String(40), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        _ts("at"),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in TABLES:
        op.drop_table(table)
    with op.batch_alter_table("steps") as batch:
        batch.drop_constraint("ck_step_action", type_="check")
        batch.create_check_constraint("ck_step_action", _one_of("action", OLD_ACTIONS))
