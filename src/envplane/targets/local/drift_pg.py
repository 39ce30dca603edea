"""PostgreSQL drift: settings, configuration files and the app's role against what envplane
configures, and putting them back.

envplane configures a cluster by its template (initdb's postgresql.conf and pg_hba.conf, the
same for every environment of this machine), the command line (port, sockets, addresses) and
the app's role (LOGIN with a password, nothing more). So `ALTER SYSTEM` (an entry in
postgresql.auto.conf), `ALTER ROLE/DATABASE ... SET`, an edited postgresql.conf or pg_hba.conf
and a role given more rights are drift. Every function here takes an open superuser connection
(autocommit), so the kind handler and the drift report share them without importing each
other."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AUTO_CONF = "postgresql.auto.conf"
# The files copied from the template that a hand edit would change.
TEMPLATE_FILES = ("postgresql.conf", "pg_hba.conf")
# What CREATE ROLE ... LOGIN gives the app's role; anything else was granted by someone.
ROLE_FLAGS = {
    "rolcanlogin": True,
    "rolsuper": False,
    "rolcreaterole": False,
    "rolcreatedb": False,
    "rolreplication": False,
    "rolbypassrls": False,
}
_FLAG_WORDS = {
    "rolcanlogin": "LOGIN",
    "rolsuper": "SUPERUSER",
    "rolcreaterole": "CREATEROLE",
    "rolcreatedb": "CREATEDB",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
}


@dataclass(frozen=True)
class Found:
    """One difference: what field, what envplane configures, what is there, who did it."""

    field: str
    expected: str
    actual: str
    changed_by: str | None = None


def _unit(value: str | None, unit: str | None) -> str:
    if value is None:
        return "(unset)"
    if unit == "8kB" and value.lstrip("-").isdigit():
        return f"{int(value) * 8}kB"
    return f"{value}{unit}" if unit and unit[0].isalpha() else value


def _base_values(conn: Any) -> dict[str, str]:
    """Each setting as envplane configures it: postgresql.conf's entry, else the default."""
    rows = conn.execute(
        "SELECT name, boot_val, unit FROM pg_settings WHERE boot_val IS NOT NULL"
    ).fetchall()
    out = {str(n): f"{_unit(v, u)} (default)" for n, v, u in rows}
    conf = conn.execute(
        "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE %s ORDER BY seqno",
        ["%/postgresql.conf"],
    ).fetchall()
    out.update({str(n): f"{v} (postgresql.conf)" for n, v in conf})
    return out


def settings(conn: Any) -> list[Found]:
    """ALTER SYSTEM entries and per-role or per-database settings, each with the value
    envplane configures."""
    base = _base_values(conn)
    found: list[Found] = []
    rows = conn.execute(
        "SELECT f.name, f.setting, f.applied, f.error FROM pg_file_settings f "
        "WHERE f.sourcefile LIKE %s ORDER BY f.name",
        ["%/" + AUTO_CONF],
    ).fetchall()
    for name, value, applied, error in rows:
        if applied:
            state = ""
        elif not error or error == "setting could not be applied":
            state = " (not applied yet: at the next restart)"  # a postmaster setting
        else:
            state = f" (not applied: {error})"
        found.append(
            Found(
                str(name),
                base.get(str(name), "(unset)"),
                f"{value}{state}",
                f"ALTER SYSTEM (in {AUTO_CONF})",
            )
        )
    scoped = conn.execute(
        "SELECT r.rolname, d.datname, unnest(s.setconfig) FROM pg_db_role_setting s "
        "LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "LEFT JOIN pg_database d ON d.oid = s.setdatabase ORDER BY 1, 2, 3"
    ).fetchall()
    for role, database, entry in scoped:
        name, _eq, value = str(entry).partition("=")
        where = " ".join(
            filter(
                None, [f"ROLE {role}" if role else "", f"DATABASE {database}" if database else ""]
            )
        )
        found.append(
            Found(f"{name} ({where})", base.get(name, "(unset)"), value, f"ALTER {where} SET")
        )
    return found


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def files(datadir: Path, template: Path) -> list[Found]:
    """The template's files as this cluster has them (sha256, shortened)."""
    found: list[Found] = []
    for name in TEMPLATE_FILES:
        want, have = _digest(template / name), _digest(datadir / name)
        if want is not None and have != want:
            actual = f"sha256 {have[:12]}" if have else "missing"
            found.append(Found(name, f"sha256 {want[:12]} (the template's)", actual, "edited"))
    return found


def role(conn: Any, user: str, password_ok: bool) -> list[Found]:
    """The app role's rights and password (never shown: '***')."""
    row = conn.execute(
        "SELECT " + ", ".join(ROLE_FLAGS) + " FROM pg_roles WHERE rolname = %s", [user]
    ).fetchone()
    if row is None:
        return [Found(f"role {user}", "exists", "missing")]
    found = [
        Found(f"role {user}.{_FLAG_WORDS[flag]}", str(want).lower(), str(have).lower())
        for (flag, want), have in zip(ROLE_FLAGS.items(), row, strict=True)
        if bool(have) != want
    ]
    if not password_ok:
        found.append(Found(f"role {user}.password", "***", "*** (another password)"))
    return found


def settle(conn: Any, user: str) -> bool:
    """Put settings and the role back (the files are the kind handler's); True when the
    server must restart for a setting to take its configured value again."""
    from psycopg import sql

    restart = conn.execute(
        "SELECT count(*) FROM pg_file_settings f JOIN pg_settings s USING (name) "
        "WHERE f.sourcefile LIKE %s AND f.applied AND s.context = 'postmaster'",
        ["%/" + AUTO_CONF],
    ).fetchone()[0]
    if conn.execute(
        "SELECT 1 FROM pg_file_settings WHERE sourcefile LIKE %s", ["%/" + AUTO_CONF]
    ).fetchone():
        conn.execute("ALTER SYSTEM RESET ALL")
    scoped = conn.execute(
        "SELECT r.rolname, d.datname FROM pg_db_role_setting s "
        "LEFT JOIN pg_roles r ON r.oid = s.setrole "
        "LEFT JOIN pg_database d ON d.oid = s.setdatabase"
    ).fetchall()
    for role_name, database in scoped:
        if role_name and database:
            stmt = sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(
                sql.Identifier(role_name), sql.Identifier(database)
            )
        elif role_name:
            stmt = sql.SQL("ALTER ROLE {} RESET ALL").format(sql.Identifier(role_name))
        else:
            stmt = sql.SQL("ALTER DATABASE {} RESET ALL").format(sql.Identifier(database))
        conn.execute(stmt)
    flags = " ".join(
        _FLAG_WORDS[f] if want else "NO" + _FLAG_WORDS[f] for f, want in ROLE_FLAGS.items()
    )
    conn.execute(sql.SQL("ALTER ROLE {} " + flags).format(sql.Identifier(user)))
    conn.execute("SELECT pg_reload_conf()")
    return bool(restart)
