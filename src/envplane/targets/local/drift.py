"""`envplane drift` on this machine: what runs against what the driver would apply, field by
field, read-only.

One check per resource kind: the programs (running, their launch spec and, for the app's
services, the live process), the files envplane writes (the app's config, nginx.conf,
prometheus.yml: sha256 against the rendered ones), PostgreSQL's settings, files and role, and
Redis's configuration. `repairable` is the part `observe` adds to the plan (so `update` repairs
it); the rest `observe` already reports itself."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import DriftItem
from envplane.targets.local import (
    drift_pg,
    drift_procs,
    drift_redis,
    nginxconf,
    pgcluster,
    scram,
    supd,
)
from envplane.targets.local import programs as progs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import files, monitoring, postgres, proxy, redis, service
from envplane.targets.local.specs import spec_map, spec_port, spec_str, spec_str_map

Check = Callable[[LocalEnv, Resource], list[DriftItem]]


def _sha(data: bytes | None) -> str:
    return "missing" if data is None else "sha256 " + hashlib.sha256(data).hexdigest()[:12]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _file(key: str, field: str, path: Path, rendered: str) -> list[DriftItem]:
    have, want = _read(path), rendered.encode()
    if have == want:
        return []
    return [DriftItem(key, field, _sha(want) + " (rendered)", _sha(have), "edited on disk")]


def _program(env: LocalEnv, res: Resource, name: str) -> list[DriftItem]:
    down = drift_procs.state(env, res.key, name)
    return [down] if down is not None else []


# -- kinds ------------------------------------------------------------------------------------


def _storage(env: LocalEnv, res: Resource) -> list[DriftItem]:
    seen = files.storage_observe(env, res)
    return [] if seen.healthy else [DriftItem(res.key, "storage", "as the spec says", seen.detail)]


def _config(env: LocalEnv, res: Resource) -> list[DriftItem]:
    root = env.layout.config
    wanted = spec_str_map(res.spec, "files", res.key)
    items = []
    for rel, content in sorted(wanted.items()):
        items += _file(res.key, rel, root / rel, content)
    present = {
        str(p.relative_to(root))
        for p in (root.rglob("*") if root.is_dir() else ())
        if p.is_file() and not p.name.startswith(".")
    }
    items += [
        DriftItem(res.key, rel, "absent", _sha(_read(root / rel)), "added on disk")
        for rel in sorted(present - set(wanted))
    ]
    return items


def _postgres(env: LocalEnv, res: Resource) -> list[DriftItem]:
    items = _program(env, res, postgres.PROGRAM)
    port = spec_port(res.spec, "port", res.key)
    items += drift_procs.launch(env, res.key, postgres.program(env, port))
    return items + (repairable(env, res) if not items else [])


def _postgres_repairable(env: LocalEnv, res: Resource) -> list[DriftItem]:
    import psycopg

    datadir, _sockdir = postgres.paths(env)
    port = spec_port(res.spec, "port", res.key)
    user = spec_str(res.spec, "user", res.key)
    found = drift_pg.files(datadir, pgcluster.template_path(env.layout))
    try:
        with postgres.superuser(env, port) as conn:
            found += drift_pg.settings(conn)
            row = conn.execute(
                "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [user]
            ).fetchone()
            secret = env.ctx.secret(spec_str(res.spec, "password_secret", res.key))
            found += drift_pg.role(conn, user, row is None or scram.matches(row[0], secret))
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return [DriftItem(res.key, "connection", "accepting connections", first)]
    return [DriftItem(res.key, f.field, f.expected, f.actual, f.changed_by) for f in found]


def _redis(env: LocalEnv, res: Resource) -> list[DriftItem]:
    items = _program(env, res, redis.PROGRAM)
    conf = env.layout.etc / "redis.conf"
    program = progs.Program(
        redis.PROGRAM, [redis.server_binary(), str(conf)], env.layout.data / "redis"
    )
    items += drift_procs.launch(env, res.key, program)
    return items + (repairable(env, res) if not items else [])


def _redis_repairable(env: LocalEnv, res: Resource) -> list[DriftItem]:
    expected = drift_redis.baseline(env)
    if expected is None:
        return []  # started before envplane kept one: the next update takes it
    port = spec_port(res.spec, "port", res.key)
    password = env.ctx.secret(spec_str(res.spec, "password_secret", res.key))
    try:
        actual = drift_redis.config_get_all(port, password)
    except OSError as exc:
        return [DriftItem(res.key, "connection", "answering", f"{type(exc).__name__}: {exc}")]
    return [
        DriftItem(res.key, name, want, have, "CONFIG SET (not in envplane's redis.conf)")
        for name, want, have in drift_redis.differences(expected, actual)
    ]


def _service(env: LocalEnv, res: Resource) -> list[DriftItem]:
    svc = service.ServiceSpec(res)
    secret = set(svc.secret_env)
    items = []
    running = 0
    for replica in range(svc.replicas):
        name = service.program_name(svc.name, replica, svc.color)
        down = drift_procs.state(env, res.key, name)
        if down is not None:
            items.append(down)
            continue
        running += 1
        program = svc.program(env, replica)
        items += drift_procs.launch(env, res.key, program, secret)
        items += drift_procs.live(env, res.key, program, secret)
    extra = [r for r in service.existing_replicas(env, svc.name, svc.color) if r >= svc.replicas]
    if running != svc.replicas or extra:
        actual = f"{running} running" + (f", extra replicas {extra}" if extra else "")
        items.insert(0, DriftItem(res.key, "replicas", f"{svc.replicas} running", actual))
    return items


def _proxy(env: LocalEnv, res: Resource) -> list[DriftItem]:
    items = _program(env, res, proxy.PROGRAM)
    text = nginxconf.render(
        env.layout,
        env.ctx.name,
        res.key,
        spec_str(res.spec, "server_conf", res.key),
        spec_map(res.spec, "upstreams", res.key),
    )
    items += _file(res.key, "nginx.conf", nginxconf.conf_path(env.layout), text)
    static = proxy.static_drift(
        env.layout.frontend, spec_str_map(res.spec, "static_files", res.key)
    )
    items += [DriftItem(res.key, "static files", "as rendered", what) for what in static]
    return items


def _monitoring(env: LocalEnv, res: Resource) -> list[DriftItem]:
    items = _program(env, res, monitoring.PROGRAM)
    conf = env.layout.etc / "prometheus.yml"
    return items + _file(res.key, "prometheus.yml", conf, monitoring.render(res))


CHECKS: dict[str, Check] = {
    "storage": _storage,
    "config": _config,
    "postgres": _postgres,
    "redis": _redis,
    "service": _service,
    "proxy": _proxy,
    "monitoring": _monitoring,
}
REPAIRABLE: dict[str, Check] = {"postgres": _postgres_repairable, "redis": _redis_repairable}


def repairable(env: LocalEnv, res: Resource) -> list[DriftItem]:
    """What `observe` does not see by itself and `apply` puts back: PostgreSQL's settings,
    files and role, Redis's CONFIG SET."""
    check = REPAIRABLE.get(res.kind)
    return check(env, res) if check is not None else []


def local_drift(env: LocalEnv, desired: DesiredEnvironment) -> list[DriftItem]:
    if not supd.answering(env.layout):
        # Nothing runs: every program is down, and that is the one thing to say.
        return [DriftItem("supervisor/supervisor", "supervisord", "running", "not running")]
    items: list[DriftItem] = []
    for res in desired.resources:
        check = CHECKS.get(res.kind)
        if check is not None:
            items += check(env, res)
    return items
