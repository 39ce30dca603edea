"""Alembic environment: envplane always passes an open connection (see envplane.state.migrate)."""

from __future__ import annotations

from alembic import context

from envplane.state.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "envplane's migrations run from envplane.state.migrate.ensure_schema, "
        "which passes the connection; there is no alembic.ini to run them from"
    )
# Batch mode: SQLite can only alter a table by copying it, Alembic does that in batch mode.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
