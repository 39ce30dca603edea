"""PostgreSQL data of a local environment: dump, restore, physical clone, size.

Client programs (pg_dump, pg_restore) run as the current user over the cluster's private unix
socket, where the superuser is trusted; pg_basebackup runs as the run user, so the copied
cluster is owned by whoever runs PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from envplane.errors import OperationFailed
from envplane.render.model import Resource
from envplane.targets.base import Sink
from envplane.targets.local import pgcluster, programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import postgres
from envplane.targets.local.specs import spec_port, spec_str

CHUNK = 1 << 20
# zlib level 1: as small as the default level on typical data (~8% larger) at a third of the
# CPU time, and still a plain custom-format dump that any pg_restore reads.
DUMP_COMPRESSION = "1"
RESTORE_JOBS = "2"
T = TypeVar("T")


def _conn_args(env: LocalEnv, port: int) -> list[str]:
    _datadir, sockdir = postgres.paths(env)
    return ["-h", str(sockdir), "-p", str(port), "-U", pgcluster.SUPERUSER]


def _client_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C", "PGCONNECT_TIMEOUT": "10"}


def _tail(text: bytes | str, lines: int = 8) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def export(env: LocalEnv, res: Resource, sink: Sink) -> None:
    """pg_dump -Fc of the app database, streamed: one consistent snapshot, the source online."""
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    argv = [str(pgcluster.bindir() / "pg_dump"), "-Fc", "-Z", DUMP_COMPRESSION]
    argv += [*_conn_args(env, port), "-d", database]
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_client_env(),
        cwd="/",
    ) as proc:
        errors: list[bytes] = []
        assert proc.stdout is not None and proc.stderr is not None
        stderr = proc.stderr
        reader = threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)
        reader.start()
        while chunk := proc.stdout.read(CHUNK):
            sink.write(chunk)
        code = proc.wait()
        reader.join()
    if code != 0:
        detail = _tail(b"".join(errors))
        raise OperationFailed(f"pg_dump of {database} failed (exit {code}): {detail}")


OLD_PREFIX = "envplane_replaced_"


def _swap_database(env: LocalEnv, res: Resource) -> list[str]:
    """Move the app database aside (renamed: instant) and create it empty; returns the names
    of replaced databases to drop, which can happen while the new one is being filled."""
    from psycopg import sql

    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    user = spec_str(res.spec, "user", res.key)
    postgres.ensure_role_and_db(env, res.spec, res.key)  # the role must exist to own it
    with postgres.superuser(env, port) as conn:
        aside = f"{OLD_PREFIX}{secrets.token_hex(6)}"
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database))
        )
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            [database],
        )
        for _attempt in range(100):  # terminated backends take a moment to go
            try:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(database), sql.Identifier(aside)
                    )
                )
                break
            except psycopg_errors().ObjectInUse:
                time.sleep(0.02)
        # CONNECTION LIMIT 0 keeps the app out (superusers are exempt: pg_restore gets in)
        # until the restore is complete, so services may still be stopping meanwhile.
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0 CONNECTION LIMIT 0").format(
                sql.Identifier(database), sql.Identifier(user)
            )
        )
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", [OLD_PREFIX]
        ).fetchall()
    return [str(r[0]) for r in rows]  # this one, and any left by an interrupted restore


def psycopg_errors() -> Any:
    import psycopg.errors

    return psycopg.errors


def _drop(env: LocalEnv, port: int, names: list[str]) -> None:
    from psycopg import sql

    with postgres.superuser(env, port) as conn:
        for name in names:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def import_(env: LocalEnv, res: Resource, source: Path) -> None:
    """Swap in an empty app database, then pg_restore -j 2 the dump into it; the replaced one
    is dropped meanwhile."""
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    replaced = _swap_database(env, res)
    dropping = threading.Thread(target=_drop, args=(env, port, replaced), daemon=True)
    dropping.start()
    argv = [str(pgcluster.bindir() / "pg_restore"), "-j", RESTORE_JOBS]
    argv += [*_conn_args(env, port), "-d", database, str(source)]
    proc = subprocess.run(
        argv, capture_output=True, env=_client_env(), cwd="/", check=False, stdin=subprocess.DEVNULL
    )
    dropping.join()
    if proc.returncode != 0:
        raise OperationFailed(
            f"pg_restore into {database} failed (exit {proc.returncode}): {_tail(proc.stderr)}",
            hint="the database is left empty or partial; fix the cause and resume the operation",
        )
    from psycopg import sql

    with postgres.superuser(env, port) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} CONNECTION LIMIT -1").format(sql.Identifier(database))
        )


def _allow_replication(env: LocalEnv, port: int) -> None:
    """Clusters made before clones existed lack the socket's replication line: add it."""
    datadir, _sockdir = postgres.paths(env)
    hba = datadir / "pg_hba.conf"
    text = hba.read_text(encoding="utf-8")
    if pgcluster.REPLICATION_LINE.split() in [line.split() for line in text.splitlines()]:
        return
    hba.write_text(text.rstrip("\n") + "\n" + pgcluster.REPLICATION_LINE + "\n", encoding="utf-8")
    with postgres.superuser(env, port) as conn:
        conn.execute("SELECT pg_reload_conf()")


def staging_dir(dst: LocalEnv) -> Path:
    """Where a copy for `dst` is made before `dst` exists: beside the environments, owned by
    the run user, on the same file system (the copy is renamed into place)."""
    return dst.layout.copy_staging


def basebackup(src: LocalEnv, src_res: Resource, into: Path) -> None:
    """pg_basebackup of the running source cluster into `into` (the run user owns it)."""
    src_port = spec_port(src_res.spec, "port", src_res.key)
    _allow_replication(src, src_port)
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(mode=0o700)
    src.user.own(into)  # pg_basebackup (as the run user) fills it
    argv = [str(pgcluster.bindir() / "pg_basebackup"), *_conn_args(src, src_port)]
    argv += ["-D", str(into), "-X", "stream", "-c", "fast", "--no-sync", "--no-manifest"]
    proc = subprocess.run(
        argv,
        capture_output=True,
        env=_client_env(),
        cwd="/",
        check=False,
        stdin=subprocess.DEVNULL,
        **src.user.popen_kwargs(),
    )
    if proc.returncode != 0:
        shutil.rmtree(into, ignore_errors=True)
        raise OperationFailed(f"pg_basebackup from {src.ctx.name} failed: {_tail(proc.stderr)}")
    (into / "pg_hba.conf").write_text(pgcluster.PG_HBA, encoding="utf-8")
    src.user.own(into / "pg_hba.conf")
    os.chmod(into, 0o700)


def copy(
    src: LocalEnv, src_res: Resource, dst: LocalEnv, dst_res: Resource, staged: Path | None = None
) -> None:
    """Put a physical copy of the source cluster (made now, or `staged` earlier) in place of
    the destination's, then give it the destination's names: the database renamed, the app
    role's password reset to the destination's own."""
    from psycopg import sql

    dst_port = spec_port(dst_res.spec, "port", dst_res.key)
    src_db = spec_str(src_res.spec, "database", src_res.key)
    dst_db = spec_str(dst_res.spec, "database", dst_res.key)
    datadir, sockdir = postgres.paths(dst)
    aside = staged if staged is not None and (staged / "PG_VERSION").is_file() else None
    if aside is None:
        aside = datadir.with_name(f".{datadir.name}.copy")
        basebackup(src, src_res, aside)
    _swap_in(dst, dst_port, datadir, aside)
    shutil.rmtree(staging_dir(dst), ignore_errors=True)  # an early copy a crash left unused
    with postgres.superuser(dst, dst_port) as conn:
        if src_db != dst_db:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dst_db))
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(src_db), sql.Identifier(dst_db)
                )
            )
    postgres.ensure_role_and_db(dst, dst_res.spec, dst_res.key)
    sockdir.mkdir(exist_ok=True, mode=0o700)


def _swap_in(env: LocalEnv, port: int, datadir: Path, aside: Path) -> None:
    """Stop the cluster, put the copy in its place, start it again; the old one is removed."""
    if programs.info(env, postgres.PROGRAM) is not None:
        programs.stop(env, postgres.PROGRAM)
    old = datadir.with_name(f".{datadir.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if datadir.exists():
        os.replace(datadir, old)
    os.replace(aside, datadir)
    remover = threading.Thread(target=shutil.rmtree, args=(old, True), daemon=False)
    remover.start()
    if programs.info(env, postgres.PROGRAM) is None:
        programs.ensure(env, postgres.program(env, port), ports=[port])
    else:
        programs.start(env, postgres.PROGRAM)
    postgres.wait_accepting(env, port)
    remover.join()


def facts(env: LocalEnv, res: Resource) -> dict[str, int]:
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    with postgres.superuser(env, port, dbname=database) as conn:
        row = conn.execute(
            "SELECT pg_database_size(current_database()), "
            "(SELECT count(*) FROM pg_stat_user_tables)"
        ).fetchone()
    return {"bytes": int(row[0]), "tables": int(row[1])} if row else {}


def with_database(env: LocalEnv, res: Resource, work: Callable[[Any], T]) -> T:
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    with postgres.superuser(env, port, dbname=database) as conn:
        return work(conn)
