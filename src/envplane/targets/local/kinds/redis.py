"""Kind "redis": redis-server with a password, bound to 127.0.0.1, data under env_dir."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from envplane.errors import ToolMissing
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import drift_redis, programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.specs import spec_port, spec_str

PROGRAM = "redis"


def _quote(value: str) -> str:
    """A redis.conf string literal: hex escapes make any byte safe inside double quotes."""
    return (
        '"'
        + "".join(chr(b) if b < 128 and chr(b).isalnum() else f"\\x{b:02x}" for b in value.encode())
        + '"'
    )


def server_binary() -> str:
    found = shutil.which("redis-server", path="/usr/local/bin:/usr/bin:/usr/sbin")
    if not found:
        raise ToolMissing(
            "redis-server not found", hint="install it: `apt-get install redis-server`"
        )
    return found


def render_conf(datadir: Path, port: int, password: str) -> str:
    return "\n".join(
        [
            "# Written by envplane; holds the password: mode 0600, owned by the run user.",
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            f"requirepass {_quote(password)}",
            f'dir "{datadir}"',
            "dbfilename dump.rdb",
            "appendonly no",
            "daemonize no",
            'logfile ""',
            "",
        ]
    )


def _ping(port: int, password: str) -> tuple[bool, str]:
    import redis

    try:
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            password=password,
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        try:
            return bool(client.ping()), "PONG"
        finally:
            client.close()
    except redis.RedisError as exc:
        return False, f"{type(exc).__name__}: {exc}"


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    port = spec_port(res.spec, "port", res.key)
    password = env.ctx.secret(spec_str(res.spec, "password_secret", res.key))
    datadir = env.layout.data / "redis"
    datadir.mkdir(exist_ok=True, mode=0o750)
    env.user.own(datadir)
    conf = env.layout.etc / "redis.conf"
    changed = atomic_write(conf, render_conf(datadir, port, password), mode=0o600, user=env.user)
    program = programs.Program(PROGRAM, [server_binary(), str(conf)], datadir)
    outcome = programs.ensure(env, program, ports=[port])
    if changed and outcome == "unchanged":
        programs.restart(env, PROGRAM)  # the file changed under a running server
    programs.wait_ready(env, PROGRAM, lambda: _ping(port, password))
    # A CONFIG SET behind envplane's back is set back (drift_redis.py says why not a restart).
    with client(port, password) as conn:
        fixed = drift_redis.settle(env, conn, fresh=changed or outcome != "unchanged")
    if fixed:
        env.ctx.progress(f"redis: {', '.join(fixed)} set back to what envplane configures")


def client(port: int, password: str) -> Any:
    """A client of the environment's server (close it: use it in a `with`)."""
    import redis

    return redis.Redis(
        host="127.0.0.1", port=port, password=password, socket_timeout=2, socket_connect_timeout=2
    )


def observe(env: LocalEnv, res: Resource) -> Observed:
    down = programs.not_running(env, PROGRAM)
    if down is not None:
        return down
    port = spec_port(res.spec, "port", res.key)
    ok, detail = _ping(port, env.ctx.secret(spec_str(res.spec, "password_secret", res.key)))
    return Observed(True, ok, "" if ok else detail)


def delete(env: LocalEnv, res: Resource) -> None:
    programs.remove(env, PROGRAM)
    (env.layout.etc / "redis.conf").unlink(missing_ok=True)
    (env.layout.etc / drift_redis.BASELINE).unlink(missing_ok=True)
    shutil.rmtree(env.layout.data / "redis", ignore_errors=True)
