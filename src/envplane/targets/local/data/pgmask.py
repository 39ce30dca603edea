"""Masking a staged PostgreSQL copy before any environment adopts it (DataTarget.mask_copy).

The copy (pg_basebackup of the source, still its user's) is started by a private server of its
own: no TCP listener (listen_addresses empty), its socket in a fresh 0700 directory, a
pg_hba.conf letting only the superuser in over that socket, tied to envplane's life. The
masking runs there (masking.run_masking: the subset, the UPDATEs, VACUUM FULL + ANALYZE), the
server shuts down cleanly, and pg_resetwal drops the WAL the copy carried (the source's records
and the UPDATEs' full-page images hold original values). Only then is the directory handed to
the destination, so no original value of a masked column is ever in the destination's cluster,
not even while it starts; on any failure the caller discards the copy.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.datacaps import MaskingPlan
from envplane.targets.local import pgcluster
from envplane.targets.local.data import masking
from envplane.targets.local.runas import RunUser

PRIVATE_HBA = (
    "# Written by envplane: only the masking, over a private socket.\nlocal all all trust\n"
)
PORT = 5432  # names the socket file only: the server listens on no TCP port
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
# Nothing here must survive a crash (a crash discards the copy), so the private server skips
# what makes its writes durable; autovacuum would only compete with the masking.
SETTINGS = (
    "listen_addresses=",
    "unix_socket_permissions=0700",
    "fsync=off",
    "full_page_writes=off",
    "synchronous_commit=off",
    "autovacuum=off",
    "archive_mode=off",
    "max_wal_senders=0",
    "logging_collector=off",
    "log_min_error_statement=panic",  # statements are not logged (they carry no secret, still)
)


def _client_env() -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LANG": "C"}


def _log_tail(log: Path, lines: int = 8) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


@contextlib.contextmanager
def _private_server(user: RunUser, cluster: Path) -> Iterator[Any]:
    """The copy started privately; yields a superuser connection factory (dbname -> conn)."""
    import psycopg

    (cluster / "pg_hba.conf").write_text(PRIVATE_HBA, encoding="utf-8")
    user.own(cluster / "pg_hba.conf")
    (cluster / "postmaster.pid").unlink(missing_ok=True)  # the source's, copied: not ours
    sockdir = Path(tempfile.mkdtemp(prefix="envplane-mask-", dir="/tmp"))
    log = sockdir / "server.log"
    proc: subprocess.Popen[bytes] | None = None
    try:
        user.own(sockdir)
        argv = [str(pgcluster.bindir() / "postgres"), "-D", str(cluster), "-p", str(PORT)]
        argv += ["-k", str(sockdir)]
        for setting in SETTINGS:
            argv += ["-c", setting]
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                user.tied(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=_client_env(),
                cwd="/",
                **user.popen_kwargs(),
            )

        def connect(dbname: str) -> Any:
            return pgcluster.connect_superuser(sockdir, PORT, dbname)

        deadline = time.monotonic() + START_TIMEOUT
        while True:  # recovery replays the WAL the base backup carries, then it accepts
            if proc.poll() is not None:
                raise OperationFailed(f"the copy's private server exited: {_log_tail(log)}")
            try:
                connect("postgres").close()
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise OperationFailed(
                        f"the copy's private server did not start within {START_TIMEOUT:.0f}s: "
                        f"{_log_tail(log)}"
                    ) from None
                time.sleep(0.02)
        yield connect
        proc.send_signal(signal.SIGINT)  # a fast shutdown: a clean one, with its checkpoint
        try:
            code = proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise OperationFailed("the copy's private server did not stop") from None
        if code != 0:
            raise OperationFailed(f"the copy's private server failed: {_log_tail(log)}")
        proc = None
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # immediate shutdown: its backends go with it
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(sockdir, ignore_errors=True)


def _reset_wal(user: RunUser, cluster: Path) -> None:
    """Drop every WAL segment of a cleanly shut down cluster (pg_resetwal refuses any other:
    nothing is lost), so the adopted copy carries no record of the unmasked rows."""
    proc = subprocess.run(
        user.tied([str(pgcluster.bindir() / "pg_resetwal"), "-D", str(cluster)]),
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
        env=_client_env(),
        **user.popen_kwargs(),
    )
    if proc.returncode != 0:
        raise OperationFailed(f"pg_resetwal of the masked copy failed: {proc.stderr.strip()}")


def mask_staged(
    user: RunUser,
    cluster: Path,
    database: str,
    plan: MaskingPlan,
    salt: str,
    progress: Callable[[str], None],
) -> list[str]:
    """Subset and mask the app database of the staged cluster copy in `cluster` (`user`'s);
    one line per statement run."""
    with _private_server(user, cluster) as connect, connect(database) as conn:
        done = masking.run_masking(conn, plan, salt, progress)
    _reset_wal(user, cluster)
    return done
