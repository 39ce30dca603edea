"""Identities of the REST API (tokens and users: role, environment scope, expiry, last use,
only a hash of the secret) and where an audited request came from and how it ended.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("envs", sa.JSON(), nullable=False),
        sa.Column("person", sa.String(128), nullable=False),
        # sha256 hex of a token; an argon2id encoded string of a password
        sa.Column("secret_hash", sa.String(255), nullable=False, index=True),
        sa.Column("created_by", sa.String(128), nullable=False),
        _ts("created_at"),
        _ts("expires_at", nullable=True),
        _ts("last_used_at", nullable=True),
        _ts("revoked_at", nullable=True),
        sa.CheckConstraint("kind IN ('token', 'user')", name="ck_identity_kind"),
        sa.CheckConstraint(
            "role IN ('viewer', 'deployer', 'approver', 'admin')", name="ck_identity_role"
        ),
    )
    with op.batch_alter_table("audit") as batch:
        batch.add_column(sa.Column("source", sa.String(128), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        batch.drop_column("outcome")
        batch.drop_column("source")
    op.drop_table("identities")
