"""Read-only views: list, info, history. Live facts come from the target, the rest from the
store."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from envplane.desired import desired_from_record, matrix_for, project_of, running_services
from envplane.errors import BadInput, EnvplaneError, UnknownEnvironment
from envplane.names import check_env_name
from envplane.state.records import OperationRecord
from envplane.targets.base import Endpoint, ServiceStatus
from envplane.workspace import Workspace


@dataclass
class EnvironmentInfo:
    name: str
    status: str
    target: str | None
    region: str | None
    template: str | None = None
    endpoints: list[Endpoint] = field(default_factory=list)
    services: list[ServiceStatus] = field(default_factory=list)
    last_operation: OperationRecord | None = None
    notes: list[str] = field(default_factory=list)
    release: str | None = None  # the live release (`envplane status` has the rest)
    versions: dict[str, str] = field(default_factory=dict)  # service -> version it runs
    platform: str | None = None  # the cloud: its cluster's status (Target.platform)


def _region(ws: Workspace, env: str) -> str | None:
    try:
        return str(matrix_for(ws, env).environment(env).regions.primary)
    except BadInput:
        return None


def _notes(ws: Workspace, env: str, target: str) -> list[str]:
    """What the target cannot honour of the matrix's `env` (none when the matrix no longer
    defines it)."""
    from envplane.targets.registry import spec

    try:
        return spec(target).notes(ws.matrix, env)
    except BadInput:
        return []


def _unknown(ws: Workspace, env: str) -> UnknownEnvironment:
    """For an environment neither the matrix nor the store knows: the matrix's error, with
    its did-you-mean."""
    try:
        ws.matrix.environment(env)
    except UnknownEnvironment as exc:
        return exc
    return UnknownEnvironment(f"unknown environment {env!r}")


def info(ws: Workspace, env: str, *, live: bool = True) -> EnvironmentInfo:
    check_env_name(env)
    record = ws.store.get_environment(env)
    in_matrix = env in ws.matrix.environments
    if record is None and not in_matrix:
        raise _unknown(ws, env)
    if record is None or record.status == "destroyed":
        status = "destroyed" if record else "not created"
        gone = EnvironmentInfo(env, status, record.target if record else None, _region(ws, env))
        ops = ws.store.operations(env, limit=1) if record else []
        gone.last_operation = ops[0] if ops else None  # history is kept
        return gone
    result = EnvironmentInfo(
        name=env,
        status=record.status,
        target=record.target,
        region=_region(ws, env),
        template=record.template,
        notes=_notes(ws, env, record.target or "local"),
    )
    ops = ws.store.operations(env, limit=1)
    if ops:
        result.last_operation = ops[0]
    live_release = ws.store.get_live(env)
    result.release = live_release.release_id if live_release else None
    with contextlib.suppress(BadInput):  # a matrix without it: the store's record is all
        result.versions = {n: r.version for n, r in running_services(ws, env).items()}
    if live:
        desired = desired_from_record(ws, record)
        target = ws.target(record.target or "local")
        ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
        result.endpoints = target.endpoints(ctx, desired)
        result.services = target.services(ctx, desired)
        result.platform = target.platform(ctx, desired)
        if record.status == "ready" and any(not s.healthy for s in result.services):
            # The store says the last operation left it ready; what runs says otherwise (a
            # stopped server, a port someone else holds): say what is true now.
            result.status = "degraded"
    return result


def list_environments(ws: Workspace, *, live: bool = True) -> list[EnvironmentInfo]:
    """Every environment of the matrix, plus any the store knows that the matrix dropped."""
    names = list(ws.matrix.environments)
    names += [r.name for r in ws.store.list_environments() if r.name not in names]
    return [_tolerant_info(ws, name, live) for name in names]


def _tolerant_info(ws: Workspace, env: str, live: bool) -> EnvironmentInfo:
    """One unreachable environment (a cloud account without credentials here) must not hide
    the others: list what the store knows and say why the live part is missing."""
    try:
        return info(ws, env, live=live)
    except EnvplaneError as exc:  # the live part failed; what the store knows still stands
        result = info(ws, env, live=False)
        result.notes.insert(0, f"live status unavailable: {exc.message}")
        return result


def history(ws: Workspace, env: str | None = None, *, limit: int = 50) -> list[OperationRecord]:
    """Operations, newest first, with their steps. An `env` that neither the matrix nor the
    store knows is an error (UnknownEnvironment, with a did-you-mean), not an empty history."""
    if env is not None:
        check_env_name(env)
    ops = list(ws.store.operations(env, limit=limit))
    if env is None or ops or env in ws.matrix.environments:
        return ops
    if ws.store.get_environment(env) is None:
        raise _unknown(ws, env)
    return ops
