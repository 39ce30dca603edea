"""PostgreSQL binaries, the per-major template cluster, and the cheap copy of it.

A cold initdb costs ~0.7 s; copying a stopped, initialized template costs ~0.1 s. The template
lives in <ENVPLANE_HOME>/cache, built once per major by the shared run user (`nobody` as root,
where it is then given to root: no environment's user owns what every environment is copied
from), published atomically. Each environment's copy is given to that environment's user.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed, ToolMissing
from envplane.targets.local.layout import Layout
from envplane.targets.local.runas import RunUser, per_environment, shared_user

SUPERUSER = "postgres"
# Bump when the initdb options change, so old caches are not reused.
TEMPLATE_FORMAT = 2  # 2: carries PLACEHOLDER_DB, renamed per environment
# CREATE DATABASE costs ~0.3 s per environment; renaming a database made once in the template
# cluster costs nothing, so each new environment renames this one to its own name.
PLACEHOLDER_DB = "envplane_app"
PG_HBA = """# Written by envplane. The superuser reaches the server only over the unix socket in the
# environment's private run/ directory (0700); TCP on 127.0.0.1 always needs a SCRAM password.
local   all   all                  trust
local   replication   all          trust
host    all   all   127.0.0.1/32   scram-sha-256
"""
# Clones copy a running cluster with pg_basebackup, a replication connection over the socket.
REPLICATION_LINE = "local   replication   all          trust"


def connect_superuser(sockdir: Path, port: int, dbname: str = "postgres", timeout: int = 5) -> Any:
    """A psycopg connection (autocommit) as the cluster's superuser over its socket directory:
    only the cluster's own OS user may reach it there."""
    import psycopg

    return psycopg.connect(
        host=str(sockdir),
        port=port,
        user=SUPERUSER,
        dbname=dbname,
        autocommit=True,
        connect_timeout=timeout,
    )


@functools.lru_cache(maxsize=1)
def bindir() -> Path:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and (candidate / "postgres").is_file():
            return candidate
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parent.parent.name) or 0),
    )
    if versions:
        return Path(versions[-1]).parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).parent
    raise ToolMissing(
        "PostgreSQL server binaries (postgres, initdb) not found",
        hint="install them: `apt-get install postgresql` (or `make setup`)",
    )


@functools.lru_cache(maxsize=1)
def installed_version() -> str:
    out = subprocess.run(
        [str(bindir() / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    match = re.search(r"(\d+(?:\.\d+)?)", out.stdout)
    if not match:
        raise ToolMissing(f"cannot tell the version of {bindir() / 'postgres'}: {out.stdout!r}")
    return match.group(1)


def major() -> str:
    return installed_version().split(".")[0]


def _initdb(user: RunUser, target: Path) -> None:
    argv = [
        str(bindir() / "initdb"),
        "-D",
        str(target),
        "-U",
        SUPERUSER,
        "-E",
        "UTF8",
        "--locale=C",
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        "--no-sync",
        # 1 MB WAL segments instead of 16: much less to copy into every new environment.
        "--wal-segsize=1",
    ]
    proc = subprocess.run(
        user.tied(argv),
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        **user.popen_kwargs(),
    )
    if proc.returncode != 0:
        raise OperationFailed(f"initdb failed for {target}: {proc.stderr.strip()}")


def _precreate_database(user: RunUser, datadir: Path) -> None:
    """CREATE DATABASE in single-user mode: no server, no port, done once per template."""
    proc = subprocess.run(
        user.tied([str(bindir() / "postgres"), "--single", "-D", str(datadir), "-F", "template1"]),
        input=f"CREATE DATABASE {PLACEHOLDER_DB};\n",
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        **user.popen_kwargs(),
    )
    if proc.returncode != 0 or "ERROR" in proc.stdout + proc.stderr:
        raise OperationFailed(f"preparing the template cluster failed: {proc.stderr.strip()}")


def template_path(layout: Layout) -> Path:
    return layout.cache / f"postgres-{major()}-template-{TEMPLATE_FORMAT}"


def template(layout: Layout, user: RunUser) -> Path:
    """The initialized, stopped template cluster for the installed major; built once."""
    final = template_path(layout)
    if (final / "PG_VERSION").is_file():
        return final
    layout.cache.mkdir(parents=True, exist_ok=True, mode=0o755)
    aside = Path(tempfile.mkdtemp(dir=layout.cache, prefix=f".postgres-{major()}-"))
    try:
        os.chmod(aside, 0o700)
        user.own(aside)
        _initdb(user, aside / "data")
        _precreate_database(user, aside / "data")
        if per_environment():
            # Copied by root for each environment, then given to its user: no environment's
            # user (nor `nobody`) may change what the next environments start from.
            give(RunUser("root", 0, 0, frozenset({0}), True), aside / "data")
        try:
            os.replace(aside / "data", final)
        except OSError:
            if not (final / "PG_VERSION").is_file():
                raise  # not a lost race: a real error
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return final


def _copy_tree(source: Path, dest: Path) -> None:
    """`cp -a`, not shutil.copytree: a copy of ~1,300 files in Python competes for the GIL
    with the other steps running beside it and took 1 s instead of 0.2 s."""
    proc = subprocess.run(
        RunUser.tied(["cp", "-a", "--", str(source), str(dest)]),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise OperationFailed(f"copying the template cluster failed: {proc.stderr.strip()}")


def spare_path(layout: Layout) -> Path:
    return layout.cache / f"postgres-{major()}-spare-{TEMPLATE_FORMAT}"


def _take_spare(layout: Layout, aside: Path) -> bool:
    """Move a ready copy of the template into place: a rename instead of a 35 MB copy.

    Two creates racing for it: one rename wins, the other copies as before."""
    spare = spare_path(layout)
    if not (spare / "PG_VERSION").is_file():
        return False
    try:
        os.replace(spare, aside)
    except OSError:  # taken by a racing create, or another filesystem
        return False
    return True


def _refill_spare_later(layout: Layout) -> None:
    """Copy the template aside for the next environment, off this one's critical path.

    It overlaps the rest of the create, and the process waits for it at exit (a non-daemon
    thread). If envplane is killed instead, the copy (tied to the thread) dies and leaves only
    a `.spare-*` temp that the next refill removes."""

    def refill() -> None:
        spare = spare_path(layout)
        if (spare / "PG_VERSION").is_file():
            return
        for stale in layout.cache.glob(".spare-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=layout.cache, prefix=".spare-"))
        try:
            _copy_tree(template_path(layout), tmp / "data")
            os.replace(tmp / "data", spare)
        except (OSError, OperationFailed):
            pass  # another refill won, or no room: the next create copies instead
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    threading.Thread(target=refill, name="envplane-pg-spare", daemon=False).start()


def materialize(layout: Layout, user: RunUser, datadir: Path) -> bool:
    """Create the environment's cluster from the template; False when it already exists."""
    if (datadir / "PG_VERSION").is_file():
        return False
    aside = datadir.with_name(f".{datadir.name}.new")
    shutil.rmtree(aside, ignore_errors=True)
    if _take_spare(layout, aside):
        _refill_spare_later(layout)
    elif (template_path(layout) / "PG_VERSION").is_file():
        _copy_tree(template_path(layout), aside)
        _refill_spare_later(layout)
    else:
        # First environment of this home: build the template and this cluster side by side
        # (two initdb processes) instead of one after the other plus a copy.
        with ThreadPoolExecutor(max_workers=1) as pool:
            building = pool.submit(template, layout, shared_user())
            _initdb(user, aside)
            building.result()
        _refill_spare_later(layout)
    (aside / "pg_hba.conf").write_text(PG_HBA, encoding="utf-8")
    user.own(aside / "pg_hba.conf")
    give(user, aside)
    os.chmod(aside, 0o700)
    os.replace(aside, datadir)
    return True


def give(user: RunUser, cluster: Path) -> None:
    """Make a cluster directory `user`'s when it is someone else's: a copy of the template
    (root's, or the shared user's), a copy made by another environment's user (a clone's
    pg_basebackup runs as the source's). One chown process, not 1,300 calls from a Python thread
    that other steps' threads keep waiting on the GIL."""
    if user.switch and cluster.stat().st_uid != user.uid:
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", "--", str(cluster)], check=True)
