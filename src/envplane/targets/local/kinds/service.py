"""Kind "service": an app service, one supervised program per replica (`svc-<name>-<i>`)."""

from __future__ import annotations

import functools
import http.client
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envplane.errors import BadInput
from envplane.names import check_ident
from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import programs
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.runas import check_reachable
from envplane.targets.local.specs import spec_int, spec_list, spec_str, spec_str_map

HEALTH_TIMEOUT = 1.0


COLORS = ("blue", "green")
# Blue replicas keep the program names environments had before releases: svc-<name>-<i>.
_PREFIX = {"blue": "svc", "green": "green"}


def program_name(service: str, replica: int, color: str = "blue") -> str:
    return f"{_PREFIX[color]}-{service}-{replica}"


def existing_replicas(env: LocalEnv, service: str, color: str = "blue") -> list[int]:
    prefix = _PREFIX[color]
    pattern = re.compile(rf"^{prefix}-{re.escape(service)}-(\d+)\.conf$")
    found = (pattern.match(p.name) for p in env.layout.conf_d.glob(f"{prefix}-{service}-*.conf"))
    return sorted(int(m.group(1)) for m in found if m)


class ServiceSpec:
    """The spec of one service, checked once."""

    def __init__(self, res: Resource) -> None:
        key, spec = res.key, res.spec
        self.name = check_ident(res.name, what="service name")
        self.command = [str(part) for part in spec_list(spec, "command", key)]
        if not self.command or not all(isinstance(p, str) and p for p in spec["command"]):
            raise BadInput(f"resource {key}: spec.command must be a non-empty list of strings")
        self.cwd = Path(spec_str(spec, "cwd", key))
        if not self.cwd.is_absolute():
            raise BadInput(
                f"resource {key}: spec.cwd must be an absolute directory, got {self.cwd}"
            )
        self.replicas = spec_int(spec, "replicas", key)
        self.ports = [int(p) for p in spec_list(spec, "ports", key)]
        if self.replicas < 0 or len(self.ports) != self.replicas:
            raise BadInput(
                f"resource {key}: spec.ports must list one port per replica "
                f"({self.replicas} replicas, {len(self.ports)} ports)",
            )
        self.health_path = str(spec.get("health_path") or "/health")
        if not self.health_path.startswith("/"):
            raise BadInput(f"resource {key}: spec.health_path must start with '/'")
        self.color = str(spec.get("color") or "blue")
        if self.color not in COLORS:
            raise BadInput(f"resource {key}: spec.color must be blue or green")
        self.version = str(spec.get("version") or "unversioned")
        smoke = spec.get("smoke_path")
        self.smoke_path = str(smoke) if isinstance(smoke, str) and smoke.startswith("/") else None
        self.migrate = [str(p) for p in spec_list(spec, "migrate", key)]
        self.env = spec_str_map(spec, "env", key)
        self.secret_env = spec_str_map(spec, "secret_env", key)

    def program(self, env: LocalEnv, replica: int) -> programs.Program:
        values = dict(self.env)
        # Secret values go only into the program's 0600 launch spec owned by the run user
        # (see launch.py); they are never printed or logged.
        values.update({var: env.ctx.secret(name) for var, name in self.secret_env.items()})
        values.update(
            PORT=str(self.ports[replica]),
            REPLICA=str(replica),
            ENVPLANE_CONFIG_DIR=str(env.layout.config),
        )
        name = program_name(self.name, replica, self.color)
        return programs.Program(name, self.command, self.cwd, values)


def health(port: int, path: str) -> tuple[bool, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HEALTH_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read(400).decode(errors="replace").strip()
        return resp.status == 200, f"HTTP {resp.status} from {path}: {body}"
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{path}: {type(exc).__name__}: {exc}"
    finally:
        conn.close()


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    svc = ServiceSpec(res)
    if not svc.cwd.is_dir():
        raise BadInput(f"resource {res.key}: working directory {svc.cwd} does not exist")
    needed = [(svc.cwd, f"the working directory of service {svc.name}")]
    needed += [
        (Path(arg), f"part of the command of service {svc.name}")
        for arg in svc.command
        if arg.startswith("/") and Path(arg).exists()
    ]
    check_reachable(env.user, needed)
    # One replica at a time: the others keep serving while one restarts.
    for replica in range(svc.replicas):
        start_replica(env, svc, replica)
    for replica in reversed(existing_replicas(env, svc.name, svc.color)):
        if replica >= svc.replicas:
            programs.remove(env, program_name(svc.name, replica, svc.color))
            env.ctx.progress(f"service {svc.name}: replica {replica} removed")
    # The other color is what a finished release left behind: the live one is this spec's.
    other = COLORS[1 - COLORS.index(svc.color)]
    for replica in reversed(existing_replicas(env, svc.name, other)):
        programs.remove(env, program_name(svc.name, replica, other))


def start_replica(env: LocalEnv, svc: ServiceSpec, replica: int) -> str:
    """Run replica `replica` of the spec (its color, version and port) and wait until its
    health check answers 200; returns what was done ("created", "restarted", "unchanged")."""
    program = svc.program(env, replica)
    port = svc.ports[replica]
    outcome = programs.ensure(env, program, ports=[port])
    if outcome != "unchanged":
        env.ctx.progress(
            f"service {svc.name}: replica {replica} {outcome} on port {port} "
            f"({svc.version} on {svc.color})"
        )
    programs.wait_ready(env, program.name, functools.partial(health, port, svc.health_path))
    return outcome


def stop_replica(env: LocalEnv, service: str, color: str, replica: int) -> None:
    programs.remove(env, program_name(service, replica, color))


def replica_states(env: LocalEnv, svc: ServiceSpec) -> list[tuple[int, bool, str]]:
    """(replica, ready, what is wrong). A replica whose port someone else holds is not ready,
    whatever answers its health check there."""
    held = programs.foreign_holders(env, svc.ports)
    states: list[tuple[int, bool, str]] = []
    for replica in range(svc.replicas):
        name = program_name(svc.name, replica, svc.color)
        state: Mapping[str, Any] | None = programs.info(env, name)
        port = svc.ports[replica]
        problem = "missing" if state is None else programs.trouble(env, name, state)
        if port in held:
            problem = "; ".join(filter(None, [programs.held_text(port, held[port]), problem]))
        if problem:
            states.append((replica, False, problem))
        else:
            ok, detail = health(port, svc.health_path)
            states.append((replica, ok, "" if ok else detail))
    return states


def observe(env: LocalEnv, res: Resource) -> Observed:
    svc = ServiceSpec(res)
    present = existing_replicas(env, svc.name, svc.color)
    known = [
        r for r in present if programs.info(env, program_name(svc.name, r, svc.color)) is not None
    ]
    if not known:
        return Observed(False, False, "no replica exists")
    states = replica_states(env, svc)
    ready = sum(1 for _r, ok, _d in states if ok)
    problems = [f"replica {r}: {d}" for r, ok, d in states if not ok]
    problems += [
        f"replica {r}: {why}"
        for r in range(svc.replicas)
        if r in known and (why := _differs(env, svc, r))
    ]
    extra = [r for r in known if r >= svc.replicas]
    if extra:
        problems.append(f"extra replicas {extra}")
    return Observed(
        True, not problems, "; ".join(problems), {"ready": ready, "desired": svc.replicas}
    )


def _differs(env: LocalEnv, svc: ServiceSpec, replica: int) -> str | None:
    """Why a replica does not run as the spec says, or None when it does. A secret it reads
    whose value changed since (`envplane secret set`) is named; `update` restarts it."""
    program = svc.program(env, replica)
    if not programs.differs(env, program):
        return None
    launched = programs.launched_env(env, program.name)
    changed = sorted(
        {
            name
            for var, name in svc.secret_env.items()
            if launched is not None and launched.get(var) != program.env[var]
        }
    )
    if changed:
        which = f"secret {changed[0]}" if len(changed) == 1 else f"secrets {', '.join(changed)}"
        return f"{which} changed since it started"
    return "runs another command or environment than the spec"


def delete(env: LocalEnv, res: Resource) -> None:
    name = check_ident(res.name, what="service name")
    for color in COLORS:
        for replica in reversed(existing_replicas(env, name, color)):
            programs.remove(env, program_name(name, replica, color))
