"""Environments not named in the matrix (clones) record how they were derived.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # {"extends": "<source env>", "overrides": {...}}: a matrix entry of its own, kept in the
    # store because the matrix file does not name the environment.
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("definition", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("definition")
