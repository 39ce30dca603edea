"""One operation model: steps journal their real action; plans are saved to apply later;
operations that only read an environment hold a shared lock on it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

OLD_ACTIONS = ("create", "update", "delete", "noop")
# Data steps (stop, copy, import, mask, start, export) are journaled as what they do.
ACTIONS = (*OLD_ACTIONS, "stop", "start", "copy", "import", "export", "mask")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.drop_constraint("ck_step_action", type_="check")
        batch.create_check_constraint("ck_step_action", _one_of("action", ACTIONS))
    op.create_table(
        "plans",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("env", sa.String(64), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_operation_id", sa.String(40), nullable=True),
    )

    op.create_table(
        "read_locks",
        sa.Column("env", sa.String(64), primary_key=True),
        sa.Column("operation_id", sa.String(40), primary_key=True),
        sa.Column("holder", sa.String(512), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("read_locks")
    op.drop_table("plans")
    with op.batch_alter_table("steps") as batch:
        batch.drop_constraint("ck_step_action", type_="check")
        batch.create_check_constraint("ck_step_action", _one_of("action", OLD_ACTIONS))
