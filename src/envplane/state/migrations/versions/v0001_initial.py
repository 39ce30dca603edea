"""Initial schema: environments, resources, operations, steps, locks, secrets, audit.

Revision ID: 0001
Revises:
Create Date: 2026-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

ENV_STATUSES = ("planned", "creating", "ready", "updating", "failed", "destroying", "destroyed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _ts(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, index=index)


def upgrade() -> None:
    op.create_table(
        "environments",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("template", sa.String(128), nullable=True),
        sa.Column("ports", sa.JSON(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("destroyed_at", nullable=True),
        sa.Column("last_operation_id", sa.String(40), nullable=True),
        sa.CheckConstraint(_one_of("status", ENV_STATUSES), name="ck_env_status"),
    )
    op.create_table(
        "resources",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("env", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        _ts("started_at", index=True),
        _ts("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            _one_of("status", ("running", "succeeded", "failed")), name="ck_operation_status"
        ),
    )
    op.create_index("ix_operations_env_started", "operations", ["env", "started_at"])
    op.create_table(
        "steps",
        sa.Column(
            "operation_id",
            sa.String(40),
            sa.ForeignKey("operations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step_index", sa.Integer(), primary_key=True),
        sa.Column("resource_key", sa.String(200), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        sa.CheckConstraint(
            _one_of("action", ("create", "update", "delete", "noop")), name="ck_step_action"
        ),
        sa.CheckConstraint(
            _one_of("status", ("running", "done", "failed", "skipped")), name="ck_step_status"
        ),
    )
    op.create_table(
        "locks",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("operation_id", sa.String(40), nullable=False),
        sa.Column("holder", sa.String(512), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
        _ts("acquired_at"),
    )
    op.create_table(
        "secrets",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        _ts("updated_at"),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        _ts("at", index=True),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("env", sa.String(64), nullable=True, index=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit", "secrets", "locks", "steps", "operations", "resources", "environments"):
        op.drop_table(table)
