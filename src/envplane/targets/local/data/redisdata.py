"""Redis data of a local environment: an RDB snapshot out (BGSAVE), a dump file in (restart)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.model import Resource
from envplane.targets.datacaps import Sink
from envplane.targets.local import programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import redis as redis_kind
from envplane.targets.local.specs import spec_port, spec_str

CHUNK = 1 << 20
SAVE_TIMEOUT = 120.0
DUMP = "dump.rdb"


def _client(env: LocalEnv, res: Resource) -> Any:
    import redis

    return redis.Redis(
        host="127.0.0.1",
        port=spec_port(res.spec, "port", res.key),
        password=env.ctx.secret(spec_str(res.spec, "password_secret", res.key)),
        socket_timeout=30,
        socket_connect_timeout=5,
    )


def _datadir(env: LocalEnv) -> Path:
    return env.layout.data / "redis"


def snapshot(env: LocalEnv, res: Resource) -> Path:
    """BGSAVE (the server forks and keeps serving) and wait for it; returns the dump file."""
    import redis

    client = _client(env, res)
    try:
        deadline = time.monotonic() + SAVE_TIMEOUT
        while True:
            try:
                client.bgsave()
                break
            except redis.ResponseError as exc:  # another save is running: ours comes after it
                if "in progress" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        while True:
            info = client.info("persistence")
            if not info.get("rdb_bgsave_in_progress"):
                break
            if time.monotonic() > deadline:
                raise OperationFailed(f"redis BGSAVE did not finish within {SAVE_TIMEOUT:.0f}s")
            time.sleep(0.01)
        if info.get("rdb_last_bgsave_status") != "ok":
            raise OperationFailed(
                "redis BGSAVE failed", hint=f"see {env.layout.program_log(redis_kind.PROGRAM)}"
            )
    finally:
        client.close()
    return _datadir(env) / DUMP


def export(env: LocalEnv, res: Resource, sink: Sink) -> None:
    # Redis replaces dump.rdb by rename, so this open file stays one complete snapshot.
    with open(snapshot(env, res), "rb") as handle:
        while chunk := handle.read(CHUNK):
            sink.write(chunk)


def _load(env: LocalEnv, staged: Path) -> None:
    """Stop the server (it saves on the way out), put the dump in place, start it: it loads."""
    if programs.info(env, redis_kind.PROGRAM) is not None:
        programs.stop(env, redis_kind.PROGRAM)
    os.replace(staged, _datadir(env) / DUMP)
    programs.start(env, redis_kind.PROGRAM)


def import_(env: LocalEnv, res: Resource, source: Path) -> None:
    staged = _datadir(env) / f".{DUMP}.new"
    shutil.copyfile(source, staged)
    env.user.own(staged)
    _load(env, staged)
    _wait(env, res)


def _staged_copy(dst: LocalEnv) -> Path:
    return dst.layout.staged("redis-copy.rdb")


def _copy_private(source: Path, target: Path) -> None:
    """Copy a dump into a file only we can read until it is handed to the run user."""
    target.unlink(missing_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as src, os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(src, out, CHUNK)


def prepare(src: LocalEnv, src_res: Resource, dst: LocalEnv) -> Path:
    """A snapshot of the source (BGSAVE: it keeps serving), staged for dst."""
    staged = _staged_copy(dst)
    staged.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    _copy_private(snapshot(src, src_res), staged)
    return staged


def seed(env: LocalEnv, dump: Path) -> None:
    """Put the dump where the server about to be created loads it from at start."""
    datadir = _datadir(env)
    datadir.mkdir(exist_ok=True, mode=0o750)
    env.user.own(datadir)
    env.user.own(dump)
    os.replace(dump, datadir / DUMP)


def copy(
    src: LocalEnv, src_res: Resource, dst: LocalEnv, dst_res: Resource, dump: Path | None = None
) -> None:
    staged = _datadir(dst) / f".{DUMP}.new"
    if dump is not None and dump.is_file():
        os.replace(dump, staged)
    else:
        _copy_private(snapshot(src, src_res), staged)
        _staged_copy(dst).unlink(missing_ok=True)  # an early copy an interrupted clone left
    dst.user.own(staged)
    _load(dst, staged)
    _wait(dst, dst_res)


def _wait(env: LocalEnv, res: Resource) -> None:
    port = spec_port(res.spec, "port", res.key)
    password = env.ctx.secret(spec_str(res.spec, "password_secret", res.key))

    def loaded() -> tuple[bool, str]:
        ok, detail = redis_kind._ping(port, password)
        return ok, detail

    programs.wait_ready(env, redis_kind.PROGRAM, loaded)


def facts(env: LocalEnv, res: Resource) -> dict[str, int]:
    client = _client(env, res)
    try:
        keys = int(client.dbsize())
        memory = int(client.info("memory").get("used_memory", 0))
    finally:
        client.close()
    return {"keys": keys, "bytes": memory}
