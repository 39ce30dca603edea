"""Bringing a state database to the schema this envplane expects, only when it is behind.

Opening an up-to-date store costs one SELECT: Alembic is imported only to migrate.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from envplane.errors import EnvplaneError
from envplane.state.db import WRITE, safe_url

# The newest revision in migrations/versions; a test holds it equal to Alembic's head.
HEAD = "0006"
MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Any fixed number: serialises concurrent first opens of one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x656E76706C616E65 & 0x7FFFFFFFFFFFFFFF


def current_revision(conn: Connection) -> str | None:
    """The database's schema revision, or None when it has none yet."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        conn.rollback()  # PostgreSQL aborts the transaction on a missing table
        return None


def ensure_schema(engine: Engine) -> bool:
    """Migrate to HEAD if needed; True when a migration ran."""
    with engine.connect() as conn:
        if current_revision(conn) == HEAD:
            conn.rollback()
            return False
        conn.rollback()
        conn.execution_options(**{WRITE: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
            # Check again under the lock: another process may have just migrated.
            revision = _revision_in_transaction(conn)
            if revision == HEAD:
                return False
            _upgrade(conn, revision)
    return True


def _revision_in_transaction(conn: Connection) -> str | None:
    # A failing SELECT would abort the migration transaction: ask the catalog first.
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(conn: Connection, revision: str | None) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = conn
    if revision is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(revision)
        except CommandError:
            raise EnvplaneError(
                f"state database {safe_url(conn.engine.url)} is at schema revision "
                f"{revision!r}, which this envplane does not know",
                hint="a newer envplane wrote it: upgrade envplane, or point "
                "ENVPLANE_DATABASE_URL at another database",
            ) from None
    command.upgrade(config, "head")
