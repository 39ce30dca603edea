"""PostgreSQL data of a local environment: dump, restore, physical clone, size.

Client programs (pg_dump, pg_restore) run as the current user over the cluster's private unix
socket, where the superuser is trusted; pg_basebackup runs as the run user, so the copied
cluster is owned by whoever runs PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, InvalidName, OperationFailed, ToolMissing
from envplane.names import sql_ident
from envplane.render.model import Resource
from envplane.targets.datacaps import ExportFormat, Sink
from envplane.targets.local import pgcluster, programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import postgres
from envplane.targets.local.runas import RunUser
from envplane.targets.local.specs import spec_port, spec_str

CHUNK = 1 << 20
# zlib level 1: as small as the default level on typical data (~8% larger) at a third of the
# CPU time, and still a plain custom-format dump that any pg_restore reads.
DUMP_COMPRESSION = "1"
RESTORE_JOBS = "2"
PHYSICAL = "pg_basebackup tar+lz4"
LOGICAL = "pg_dump custom"
LOGICAL_FORMATS = (LOGICAL, "")  # "": backups made before the format was recorded


def _conn_args(env: LocalEnv, port: int) -> list[str]:
    _datadir, sockdir = postgres.paths(env)
    return ["-h", str(sockdir), "-p", str(port), "-U", pgcluster.SUPERUSER]


def _client_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C", "PGCONNECT_TIMEOUT": "10"}


def _tail(text: bytes | str, lines: int = 8) -> str:
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.strip().splitlines()[-lines:])


class _Stderr:
    """A child's standard error, read aside so the pipe never fills while we stream the other
    one; `tail()` waits for the end and returns its last lines."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stderr is not None
        stream = proc.stderr
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=lambda: self._chunks.append(stream.read()))
        self._reader.start()

    def tail(self) -> str:
        self._reader.join()
        return _tail(b"".join(self._chunks))


def _stream(argv: list[str], sink: Sink, what: str) -> None:
    """Run a client program and stream its standard output into `sink`."""
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=_client_env(),
        cwd="/",
    ) as proc:
        errors = _Stderr(proc)
        assert proc.stdout is not None
        while chunk := proc.stdout.read(CHUNK):
            sink.write(chunk)
        code = proc.wait()
    if code != 0:
        raise OperationFailed(f"{what} failed (exit {code}): {errors.tail()}")


def export(env: LocalEnv, res: Resource, sink: Sink, *, logical: bool) -> ExportFormat:
    """A consistent snapshot of the source, online: a physical base backup of the cluster
    (pg_basebackup, lz4-compressed by the server), or with `logical` a pg_dump -Fc of the app
    database, portable across PostgreSQL versions but restored row by row and index by index."""
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    if logical:
        argv = [str(pgcluster.bindir() / "pg_dump"), "-Fc", "-Z", DUMP_COMPRESSION]
        _stream([*argv, *_conn_args(env, port), "-d", database], sink, f"pg_dump of {database}")
        return ExportFormat(LOGICAL)
    _allow_replication(env, port)
    argv = [str(pgcluster.bindir() / "pg_basebackup"), *_conn_args(env, port)]
    # To standard output, a tar needs the WAL fetched at the end rather than streamed beside.
    argv += ["-D", "-", "-Ft", "-X", "fetch", "-c", "fast", "--no-manifest"]
    _stream([*argv, "--compress=server-lz4"], sink, f"pg_basebackup of {env.ctx.name}")
    return ExportFormat(PHYSICAL, {"postgres_major": pgcluster.major(), "database": database})


def check_import(export: ExportFormat) -> None:
    if export.format in LOGICAL_FORMATS:
        return
    if export.format != PHYSICAL:
        raise BadInput(f"cannot restore PostgreSQL data of format {export.format!r}")
    made_with = export.details.get("postgres_major", "?")
    if made_with != pgcluster.major():
        raise BadInput(
            f"the backup holds a PostgreSQL {made_with} cluster, and this machine runs "
            f"PostgreSQL {pgcluster.major()}: a physical copy only starts on the same major",
            hint="restore it where that major is installed, or take a `backup --logical`",
        )
    database = export.details.get("database", "")
    try:
        valid = sql_ident(database) == database
    except InvalidName:
        valid = False
    if not valid:
        raise BadInput(f"the backup's PostgreSQL component names no valid database: {database!r}")
    if shutil.which("lz4") is None:
        raise ToolMissing("lz4 is needed to unpack the backup", hint="apt-get install lz4")


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


def import_(env: LocalEnv, res: Resource, source: Path, export: ExportFormat) -> None:
    if export.format in LOGICAL_FORMATS:
        _import_logical(env, res, source)
    else:
        _import_physical(env, res, source, export.details["database"])


def restore_staging(env: LocalEnv) -> Path:
    """Where a physical backup is unpacked before it is swapped in: beside the environments
    (the environment may not exist yet), on the same file system, reachable by the run user."""
    return env.layout.staged("postgres-restore")


class ClusterUnpacker:
    """tar (as the run user, lz4 undoing the server's compression) unpacking a base backup into
    the restore staging directory as the bytes are verified."""

    def __init__(self, env: LocalEnv) -> None:
        # The swap after it connects with psycopg (~0.15 s to import): import it meanwhile.
        threading.Thread(target=importlib.import_module, args=("psycopg",), daemon=True).start()
        self.into = restore_staging(env)
        shutil.rmtree(self.into, ignore_errors=True)
        self.into.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.into.mkdir(mode=0o700)
        env.user.own(self.into)
        # 1 MiB records: a tenth of the write calls of the default 10 KiB, ~15% faster here.
        argv = RunUser.tied(["tar", "-I", "lz4", "-b", "2048", "-B", "-x", "-f", "-"])
        argv += ["-C", str(self.into)]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=_client_env(),
            cwd="/",
            **env.user.popen_kwargs(),
        )
        assert self._proc.stdin is not None
        self._stdin = self._proc.stdin
        with contextlib.suppress(OSError):  # fewer, larger writes; the default is 64 KiB
            fcntl.fcntl(self._stdin.fileno(), fcntl.F_SETPIPE_SZ, CHUNK)
        self._errors = _Stderr(self._proc)

    def write(self, data: bytes, /) -> int:
        try:
            self._stdin.write(data)
        except BrokenPipeError:
            raise OperationFailed(
                f"unpacking the PostgreSQL backup failed: {self._wait()}"
            ) from None
        return len(data)

    def _wait(self) -> str:
        with contextlib.suppress(BrokenPipeError):
            self._stdin.close()
        self._proc.wait()
        return self._errors.tail()

    def finish(self) -> Path:
        errors = self._wait()
        if self._proc.returncode != 0 or not (self.into / "PG_VERSION").is_file():
            raise OperationFailed(f"unpacking the PostgreSQL backup failed: {errors}")
        return self.into

    def abort(self) -> None:
        self._proc.kill()
        self._wait()
        shutil.rmtree(self.into, ignore_errors=True)


def _import_physical(env: LocalEnv, res: Resource, source: Path, src_db: str) -> None:
    """Swap in the cluster `source` is (unpacked while it was verified) or holds (a backup
    file, unpacked now); the server replays the WAL the backup carries and is consistent."""
    if not source.is_dir():
        unpacker = ClusterUnpacker(env)
        try:
            with open(source, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    unpacker.write(chunk)
            source = unpacker.finish()
        except BaseException:
            unpacker.abort()
            raise
    _adopt(env, res, source, src_db)


def _import_logical(env: LocalEnv, res: Resource, source: Path) -> None:
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
    return dst.layout.staged("postgres-copy")


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


@dataclass(frozen=True)
class ClusterCopy:
    """A physical copy of a source cluster staged for a destination; `database` is the
    source's app database, renamed to the destination's when the copy is adopted; `user` owns
    it until then (the source's: pg_basebackup ran as it, and a masking runs as it)."""

    path: Path
    database: str
    user: RunUser


def prepare(src: LocalEnv, src_res: Resource, dst: LocalEnv) -> ClusterCopy:
    staged = staging_dir(dst)
    basebackup(src, src_res, staged)
    return ClusterCopy(staged, spec_str(src_res.spec, "database", src_res.key), src.user)


def seed(env: LocalEnv, res: Resource, copy: ClusterCopy) -> None:
    """Start a new environment's cluster from the copy instead of the template (replacing
    whatever an earlier, interrupted attempt left)."""
    _datadir, sockdir = postgres.paths(env)
    sockdir.mkdir(exist_ok=True, mode=0o700)
    env.user.own(sockdir)
    _adopt(env, res, copy.path, copy.database)


def copy(
    src: LocalEnv,
    src_res: Resource,
    dst: LocalEnv,
    dst_res: Resource,
    staged: ClusterCopy | None = None,
) -> None:
    """Put a physical copy of the source cluster (made now, or `staged` earlier) in place of
    the destination's."""
    src_db = spec_str(src_res.spec, "database", src_res.key)
    if staged is not None and (staged.path / "PG_VERSION").is_file():
        aside, src_db = staged.path, staged.database
    else:
        # Beside the environments, not inside dst's directory: pg_basebackup runs as the
        # source's user, who may not enter dst's (its own user's, 0700).
        aside = staging_dir(dst)
        basebackup(src, src_res, aside)
    _adopt(dst, dst_res, aside, src_db)
    shutil.rmtree(staging_dir(dst), ignore_errors=True)  # an early copy a crash left unused


def _adopt(env: LocalEnv, res: Resource, aside: Path, src_db: str) -> None:
    """Make the cluster copy in `aside` the environment's, under its own names: the local-only
    pg_hba, the database renamed from the source's, the app role's password its own."""
    from psycopg import sql

    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    datadir, sockdir = postgres.paths(env)
    (aside / "pg_hba.conf").write_text(pgcluster.PG_HBA, encoding="utf-8")
    env.user.own(aside / "pg_hba.conf")
    pgcluster.give(env.user, aside)  # a clone's copy is the source's user's until now
    os.chmod(aside, 0o700)
    _swap_in(env, port, datadir, aside)
    with postgres.superuser(env, port) as conn:
        if src_db != database:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
            )
            conn.execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(src_db), sql.Identifier(database)
                )
            )
    postgres.ensure_role_and_db(env, res.spec, res.key)
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


def rows_changed(env: LocalEnv, res: Resource) -> dict[str, int]:
    """Per user table (schema.table), the rows inserted, updated and deleted so far, as the
    statistics collector counts them (flushed by each backend within about a second)."""
    port = spec_port(res.spec, "port", res.key)
    database = spec_str(res.spec, "database", res.key)
    with postgres.superuser(env, port, dbname=database) as conn:
        rows = conn.execute(
            "SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del "
            "FROM pg_stat_user_tables"
        ).fetchall()
    return {str(name): int(count) for name, count in rows}
