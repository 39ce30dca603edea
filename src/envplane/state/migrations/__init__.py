"""Alembic migrations of the state store, run programmatically by envplane.state.migrate."""
