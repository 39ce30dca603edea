"""What the local target requires of a desired environment and of ENVPLANE_HOME, decided
before anything is recorded or started (`LocalTarget.check`).

Each rule is the one a kind handler or the layout applies when the environment is made (their
own functions where they have pure ones), so what `create` would refuse at its sixth step, with
PostgreSQL and Redis already running, `check`, `plan` and `create` refuse first: a value of the
matrix located where it is written, anything else naming what to change on this machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from envplane.errors import BadInput
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import Problem
from envplane.targets.local import supd
from envplane.targets.local.kinds import files, monitoring, proxy, service
from envplane.targets.local.layout import MAX_SOCKET_DIR, SAFE_PATH_RE, Layout
from envplane.targets.local.runas import (
    RunUser,
    first_unreachable,
    nearest_existing,
    run_user,
    unreachable_error,
)
from envplane.targets.local.specs import spec_list, spec_port, spec_str, spec_str_map


def check(desired: DesiredEnvironment, env_dir: Path) -> list[Problem]:
    problems = [p for res in desired.resources for p in _resource(res)]
    problems += _ports(desired)
    problems += _home(desired, env_dir)
    return problems


# --- the resources ------------------------------------------------------------------------


def _resource(res: Resource) -> list[Problem]:
    if res.kind == "service":
        missing = _command(res)
        if missing:
            return missing  # the spec rules below would only say it again, unlocated
    rule = _SPEC_RULES.get(res.kind)
    if rule is None:
        return []
    try:
        rule(res)
    except BadInput as exc:
        return [Problem(exc.message, exc.hint)]
    return []


def _command(res: Resource) -> list[Problem]:
    """A service runs as a process here: it needs a command (an image alone is for the cloud)."""
    command = res.spec.get("command")
    at = ("services", res.name, "command")
    if not command:
        return [
            Problem(
                f"service {res.name!r} has no `command`: the local target runs each service "
                "as a process (an `image` is used only by the cloud target)",
                "add `command:` to the service (run from the project root; {python} is the "
                "interpreter running envplane), or use `--target cloud`",
                at,
            )
        ]
    if not isinstance(command, list) or not all(isinstance(w, str) and w for w in command):
        return [Problem(f"service {res.name!r}: every word of `command` must be text", None, at)]
    return []


def _service(res: Resource) -> None:
    svc = service.ServiceSpec(res)  # the handler's own reading of the spec
    if not svc.cwd.is_dir():
        raise BadInput(f"service {svc.name!r} would run in {svc.cwd}, which is not a directory")


def _config(res: Resource) -> None:
    for rel in spec_str_map(res.spec, "files", res.key):  # as kinds/files.py writes them
        parts = rel.split("/")
        if len(parts) != 2 or not all(files.PART_RE.fullmatch(p) for p in parts):
            raise BadInput(
                f"config file {rel!r} must be '<configmap>/<key>' made of letters, digits, "
                "'.', '_' and '-'",
                hint="rename the ConfigMap or its key in the environment's config template",
            )


def _port_only(res: Resource) -> None:
    spec_port(res.spec, "port", res.key)


def _proxy(res: Resource) -> None:
    spec_port(res.spec, "port", res.key)
    spec_str(res.spec, "server_conf", res.key)
    for name in spec_str_map(res.spec, "static_files", res.key):
        if not proxy.STATIC_PART_RE.fullmatch(name):
            raise BadInput(
                f"static file {name!r} of the frontend must be a plain file name",
                hint="rename the file in the project's frontend/ directory or its template",
            )


def _monitoring(res: Resource) -> None:
    spec_port(res.spec, "port", res.key)
    monitoring.render(res)


_SPEC_RULES: dict[str, Callable[[Resource], object]] = {
    "service": _service,
    "config": _config,
    "postgres": _port_only,
    "redis": _port_only,
    "proxy": _proxy,
    "monitoring": _monitoring,
}


def _ports_of(res: Resource) -> Iterator[int]:
    value = res.spec.get("port")
    if isinstance(value, int):
        yield value
    if res.kind == "service":
        try:
            yield from (p for p in spec_list(res.spec, "ports", res.key) if isinstance(p, int))
        except BadInput:
            return


def _ports(desired: DesiredEnvironment) -> list[Problem]:
    """Every program listens on its own 127.0.0.1 port."""
    owner: dict[int, str] = {}
    problems = []
    for res in desired.resources:
        for port in _ports_of(res):
            if port in owner and owner[port] != res.key:
                problems.append(
                    Problem(
                        f"port {port} is given to both {owner[port]} and {res.key}",
                        "the recorded ports collide: destroy and re-create the environment",
                    )
                )
            owner.setdefault(port, res.key)
    return problems


# --- ENVPLANE_HOME and the run user -------------------------------------------------------


def _home(desired: DesiredEnvironment, env_dir: Path) -> list[Problem]:
    layout = Layout(env_dir)
    home = layout.home
    try:
        # As root the environment's own user, or the one it would get (judged by the bits
        # every other user has): an ENVPLANE_HOME only root may traverse is refused here.
        user = run_user(desired.name, env_dir)
    except BadInput as exc:
        return [Problem(exc.message, exc.hint)]
    if not SAFE_PATH_RE.fullmatch(str(env_dir)):
        return [_unsafe_path(home)]
    problems = []
    if len(str(layout.run / "postgres")) > MAX_SOCKET_DIR:
        room = MAX_SOCKET_DIR - len(str(layout.run / "postgres")) + len(str(home))
        problems.append(
            Problem(
                f"ENVPLANE_HOME {home} is too long for environment {desired.name!r}: its unix "
                f"sockets (<environment>/run/...) would pass the 107-byte limit of a socket "
                "path",
                f"use an ENVPLANE_HOME of at most {max(room, 1)} characters",
            )
        )
    writable = nearest_existing(env_dir)
    if not os.access(writable, os.W_OK | os.X_OK):
        problems.append(
            Problem(
                f"ENVPLANE_HOME {home}: {writable} is not writable by this user, who creates "
                "the environment's directory there",
                "set ENVPLANE_HOME to a directory you can write to",
            )
        )
    problems += _reachable(user, home, layout, desired)
    return problems


def _unsafe_path(home: Path) -> Problem:
    text = str(home)
    if any(c.isspace() for c in text):
        # Verified: supervisord reads `[include] files=` as globs split at whitespace
        # (supervisor/options.py), so with a space in the path it finds no program of the
        # environment, and the first program to start fails (BAD_NAME).
        why = (
            "contains a space: supervisord splits the list of files it includes "
            "(`[include] files=`) at spaces, so it would find none of the environment's programs"
        )
    else:
        # Also verified: a '%' makes supervisord refuse its configuration (interpolation), and
        # the `command=` lines envplane writes are split like a shell line (process.py), which
        # quotes and backslashes break; the layout allows only plain characters (SAFE_PATH_RE).
        why = (
            "contains characters envplane does not write into supervisord's configuration "
            "('%' is an interpolation there, and quotes or backslashes break the split of its "
            "`command=` lines)"
        )
    return Problem(
        f"ENVPLANE_HOME {text!r} {why}",
        "set ENVPLANE_HOME to a path made of letters, digits and . _ - / + @ = only",
    )


def _reachable(
    user: RunUser, home: Path, layout: Layout, desired: DesiredEnvironment
) -> list[Problem]:
    """Every path the environment's processes (run as `user`) open: the environment's
    directory, the interpreter and packages supervisord runs from, each service's working
    directory and the absolute paths of its command."""
    # The environments' common directory first: one message for every environment.
    needed = [(home / "environments", "ENVPLANE_HOME's directory of environments")]
    needed += supd.reachable_paths(layout)
    for res in desired.resources:
        if res.kind != "service":
            continue
        cwd = res.spec.get("cwd")
        if isinstance(cwd, str) and cwd:
            needed.append((Path(cwd), f"the working directory of service {res.name}"))
        for word in res.spec.get("command") or []:
            if isinstance(word, str) and word.startswith("/") and Path(word).exists():
                needed.append((Path(word), f"part of the command of service {res.name}"))
    found = first_unreachable(user, needed)
    if found is None:
        return []
    exc = unreachable_error(user, *found)
    return [Problem(f"ENVPLANE_HOME {home}: {exc.message}", exc.hint)]
