"""An environment as the matrix wants it (rendered for its target, with the ports and secrets
that rendering needs) and as the store records it (its resources, rebuilt): what the lifecycle,
validate and the data operations share, below all of them."""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from envplane.errors import BadInput
from envplane.plan.diff import kind_rank
from envplane.render.model import DesiredEnvironment, Resource, Running
from envplane.targets.registry import Rendered, spec

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.state.store import EnvironmentRecord
    from envplane.workspace import Workspace


def other_environments_ports(ws: Workspace, env: str) -> set[int]:
    taken: set[int] = set()
    for record in ws.store.list_environments():
        if record.name != env:
            taken.update(int(p) for p in (record.ports or {}).values())
    return taken


def matrix_for(ws: Workspace, env: str, definition: Mapping[str, Any] | None = None) -> Matrix:
    """The matrix that defines `env`: the file's, plus the environment itself when the file does
    not name it but the store recorded how it was derived (a clone: extends + overrides)."""
    if env in ws.matrix.environments:
        return ws.matrix
    if definition is None:
        record = ws.store.get_environment(env)
        definition = record.definition if record is not None else None
    if not definition or not isinstance(definition.get("extends"), str):
        return ws.matrix  # callers ask it for `env` and get UnknownEnvironment
    overrides = definition.get("overrides")
    return ws.matrix.with_environment(
        env, definition["extends"], dict(overrides) if isinstance(overrides, Mapping) else None
    )


def render(
    ws: Workspace,
    env: str,
    *,
    target: str,
    template: str | None,
    ports: Mapping[str, int],
    matrix: Matrix | None = None,
    running: Mapping[str, Running] | None = None,
) -> Rendered:
    """Desired state for `target`, with every port it needs: the recorded `ports` kept, missing
    ones allocated now, away from the ports other environments hold (the target's renderer
    decides; the cloud allocates none). Services run what the store says is live there
    (`running` overrides it: a deploy renders the versions it moves to)."""
    renderer = spec(target).render
    matrix = matrix or matrix_for(ws, env)
    return renderer(
        matrix,
        env,
        template=template,
        ports=ports,
        held_ports=lambda: other_environments_ports(ws, env),
        env_dir=ws.env_dir(env),
        running=running if running is not None else running_services(ws, env, matrix),
    )


def running_services(ws: Workspace, env: str, matrix: Matrix | None = None) -> dict[str, Running]:
    """What each service of `env` runs now: the live release's version and color, or its
    initial version on blue (before any release, and for a service no release named)."""
    services = (matrix or matrix_for(ws, env)).services_for(env)
    live = ws.store.get_live(env)
    recorded = dict(live.services) if live is not None else {}
    out: dict[str, Running] = {}
    for name, service in services.items():
        entry = recorded.get(name)
        if isinstance(entry, Mapping) and isinstance(entry.get("version"), str):
            out[name] = Running(str(entry["version"]), str(entry.get("color") or "blue"))
        else:
            out[name] = Running(service.initial_version())
    return out


def ensure_secrets(ws: Workspace, env: str, names: tuple[str, ...]) -> None:
    """Generate each secret once; an existing one is kept (data already depends on it)."""
    present = set(ws.store.secret_names(env))
    for name in names:
        if name not in present:
            ws.store.put_secret(env, name, pysecrets.token_urlsafe(24))


def recorded_resources(ws: Workspace, env: str, target: str | None = None) -> dict[str, Resource]:
    """The store's resources of `env` in its target's creation order (`target` defaults to
    the one recorded for the environment)."""
    if target is None:
        record = ws.store.get_environment(env)
        target = (record.target if record is not None else None) or "local"
    kinds = spec(target).kinds
    out: dict[str, Resource] = {}
    for key, rec in sorted(ws.store.resources(env).items(), key=lambda kv: kind_rank(kv[0], kinds)):
        kind, name = key.split("/", 1)
        out[key] = Resource(kind, name, dict(rec.spec or {}))
    return out


def desired_from_record(ws: Workspace, record: EnvironmentRecord) -> DesiredEnvironment:
    """What the environment *is* per the store: used by info/destroy even if the matrix changed."""
    target = record.target or "local"
    resources = tuple(recorded_resources(ws, record.name, target).values())
    project = project_of(ws)
    return DesiredEnvironment(name=record.name, project=project, target=target, resources=resources)


def project_of(ws: Workspace) -> str:
    """The matrix's project, or the default when the matrix cannot be read (destroy and info
    must still work then)."""
    try:
        return ws.matrix.project
    except BadInput:
        return "envplane"
