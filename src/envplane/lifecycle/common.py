"""Pieces shared by the lifecycle operations: rendering, secrets, recorded resources."""

from __future__ import annotations

import secrets as pysecrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envplane.errors import BadInput
from envplane.plan.diff import kind_rank
from envplane.render.model import DesiredEnvironment, Resource

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.state.store import EnvironmentRecord
    from envplane.workspace import Workspace


@dataclass(frozen=True)
class Rendered:
    desired: DesiredEnvironment
    ports: dict[str, int]
    new_ports: dict[str, int]


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
) -> Rendered:
    """Desired state with every needed port: recorded ones kept, missing ones allocated now.

    The cloud target allocates nothing locally: its endpoints come from Terraform outputs."""
    matrix = matrix or matrix_for(ws, env)
    if target == "cloud":
        from envplane.render.cloud import desired_cloud

        return Rendered(
            desired=desired_cloud(matrix, env, template=template), ports={}, new_ports={}
        )
    if target != "local":
        raise BadInput(f"unknown target {target!r}; choose local or cloud")
    from envplane.ports import allocate
    from envplane.render.local import desired_local, port_keys

    keys = port_keys(matrix, env)
    missing = [k for k in keys if k not in ports]
    new_ports = (
        allocate(missing, other_environments_ports(ws, env) | set(ports.values()))
        if missing
        else {}
    )
    all_ports = {k: v for k, v in {**ports, **new_ports}.items() if k in keys}
    desired = desired_local(
        matrix, env, env_dir=ws.env_dir(env), ports=all_ports, template=template
    )
    return Rendered(desired=desired, ports=all_ports, new_ports=new_ports)


def ensure_secrets(ws: Workspace, env: str, names: tuple[str, ...]) -> None:
    """Generate each secret once; an existing one is kept (data already depends on it)."""
    present = set(ws.store.secret_names(env))
    for name in names:
        if name not in present:
            ws.store.put_secret(env, name, pysecrets.token_urlsafe(24))


def recorded_resources(ws: Workspace, env: str) -> dict[str, Resource]:
    out: dict[str, Resource] = {}
    for key, rec in sorted(ws.store.resources(env).items(), key=lambda kv: kind_rank(kv[0])):
        kind, name = key.split("/", 1)
        out[key] = Resource(kind, name, dict(rec.spec or {}))
    return out


def desired_from_record(ws: Workspace, record: EnvironmentRecord) -> DesiredEnvironment:
    """What the environment *is* per the store: used by info/destroy even if the matrix changed."""
    resources = tuple(recorded_resources(ws, record.name).values())
    project = project_of(ws)
    return DesiredEnvironment(
        name=record.name, project=project, target=record.target or "local", resources=resources
    )


def project_of(ws: Workspace) -> str:
    """The matrix's project, or the default when the matrix cannot be read (destroy and info
    must still work then)."""
    try:
        return ws.matrix.project
    except BadInput:
        return "envplane"
