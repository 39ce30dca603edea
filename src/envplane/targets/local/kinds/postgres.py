"""Kind "postgres": a cluster copied from the template, run by supervisord, with the app's role
and database."""

from __future__ import annotations

import importlib
import shutil
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import drift_pg, pgcluster, programs, scram
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.specs import spec_port, spec_str

PROGRAM = "postgres"


def _paths(env: LocalEnv) -> tuple[Path, Path]:
    return env.layout.data / "postgres", env.layout.run / "postgres"


def _program(env: LocalEnv, port: int) -> programs.Program:
    datadir, sockdir = _paths(env)
    argv = [
        str(pgcluster.bindir() / "postgres"),
        "-D",
        str(datadir),
        "-p",
        str(port),
        "-k",
        str(sockdir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_permissions=0700",
    ]
    # SIGINT is PostgreSQL's fast shutdown; the postmaster stops its own backends.
    return programs.Program(
        PROGRAM, argv, datadir, stopsignal="INT", stopasgroup=False, stopwaitsecs=30
    )


def _superuser(env: LocalEnv, port: int, timeout: int = 5) -> Any:
    _datadir, sockdir = _paths(env)
    return pgcluster.connect_superuser(sockdir, port, timeout=timeout)


def _accepts(env: LocalEnv, port: int) -> tuple[bool, str]:
    import psycopg

    try:
        with _superuser(env, port, timeout=1):
            return True, "accepting connections"
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _ensure_role_and_db(env: LocalEnv, spec: Mapping[str, Any], key: str) -> None:
    from psycopg import sql

    port = spec_port(spec, "port", key)
    user = spec_str(spec, "user", key)
    database = spec_str(spec, "database", key)
    password = env.ctx.secret(spec_str(spec, "password_secret", key))
    if scram.usable(password):
        secret: sql.Composable = sql.Literal(scram.verifier(password))
    else:
        secret = sql.Literal(password)
    with _superuser(env, port) as conn:
        row = conn.execute(
            "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [user]
        ).fetchone()
        if row is None:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(user), secret)
            )
        elif not scram.matches(row[0], password):
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(user), secret))
        exists = "SELECT 1 FROM pg_database WHERE datname = %s"
        if conn.execute(exists, [database]).fetchone() is not None:
            return
        if conn.execute(exists, [pgcluster.PLACEHOLDER_DB]).fetchone() is not None:
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(pgcluster.PLACEHOLDER_DB), sql.Identifier(database)
                )
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
                    sql.Identifier(database), sql.Identifier(user)
                )
            )
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(user)
                )
            )


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    port = spec_port(res.spec, "port", res.key)
    # psycopg takes ~0.15 s to import: let that overlap with copying the cluster.
    threading.Thread(target=importlib.import_module, args=("psycopg",), daemon=True).start()
    datadir, sockdir = _paths(env)
    created = pgcluster.materialize(env.layout, env.user, datadir)
    sockdir.mkdir(exist_ok=True, mode=0o700)
    env.user.own(sockdir)
    if created:
        env.ctx.progress(f"postgres: cluster {pgcluster.installed_version()} created in {datadir}")
    programs.ensure(env, _program(env, port), ports=[port])
    programs.wait_ready(env, PROGRAM, lambda: _accepts(env, port))
    _ensure_role_and_db(env, res.spec, res.key)
    _settle(env, port, spec_str(res.spec, "user", res.key))


def _settle(env: LocalEnv, port: int, user: str) -> None:
    """Put back what was changed behind envplane's back: ALTER SYSTEM, ALTER ROLE/DATABASE
    SET, the role's rights, an edited postgresql.conf or pg_hba.conf (drift_pg.py)."""
    datadir, _sockdir = _paths(env)
    template = pgcluster.template_path(env.layout)
    edited = drift_pg.files(datadir, template)
    for found in edited:
        source = (template / found.field).read_bytes()
        atomic_write(datadir / found.field, source, mode=0o600, user=env.user)
    with _superuser(env, port) as conn:
        restart = drift_pg.settle(conn, user)
    if restart or edited:
        env.ctx.progress("postgres: restarted to take back what envplane configures")
        programs.restart(env, PROGRAM)
        programs.wait_ready(env, PROGRAM, lambda: _accepts(env, port))


def _version_note(spec: Mapping[str, Any]) -> str:
    requested = str(spec.get("version", ""))
    installed = pgcluster.installed_version()
    if requested and requested.split(".")[0] != installed.split(".")[0]:
        return f"requested PostgreSQL {requested}; running the installed {installed}"
    return ""


def observe(env: LocalEnv, res: Resource) -> Observed:
    import psycopg

    port = spec_port(res.spec, "port", res.key)
    datadir, _sockdir = _paths(env)
    state = programs.info(env, PROGRAM)
    note = _version_note(res.spec)
    facts = {"version": pgcluster.installed_version(), "datadir": str(datadir)}
    if state is None:
        return Observed(False, False, "; ".join(filter(None, ["not running", note])), facts)
    problem = programs.trouble(env, PROGRAM, state)
    if problem is not None:
        return Observed(True, False, "; ".join(filter(None, [problem, note])), facts)
    try:
        password = env.ctx.secret(spec_str(res.spec, "password_secret", res.key))
        with psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=spec_str(res.spec, "user", res.key),
            password=password,
            dbname=spec_str(res.spec, "database", res.key),
            connect_timeout=2,
        ):
            pass
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Observed(True, False, "; ".join(filter(None, [first, note])), facts)
    return Observed(True, True, note, facts)


def delete(env: LocalEnv, res: Resource) -> None:
    programs.remove(env, PROGRAM)
    datadir, sockdir = _paths(env)
    shutil.rmtree(datadir, ignore_errors=True)
    shutil.rmtree(sockdir, ignore_errors=True)
    if datadir.exists():
        raise OperationFailed(f"could not remove {datadir}")


# -- for the data operations (targets/local/data/) --------------------------------------------


def paths(env: LocalEnv) -> tuple[Path, Path]:
    """(data directory, socket directory) of the environment's cluster."""
    return _paths(env)


def program(env: LocalEnv, port: int) -> programs.Program:
    return _program(env, port)


def wait_accepting(env: LocalEnv, port: int) -> None:
    programs.wait_ready(env, PROGRAM, lambda: _accepts(env, port))


def ensure_role_and_db(env: LocalEnv, spec: Mapping[str, Any], key: str) -> None:
    _ensure_role_and_db(env, spec, key)


def superuser(env: LocalEnv, port: int, dbname: str = "postgres") -> Any:
    _datadir, sockdir = _paths(env)
    return pgcluster.connect_superuser(sockdir, port, dbname)
