"""What the data operations know of an environment: its record, resources, driver and policy."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

from envplane.desired import desired_from_record, matrix_for, project_of
from envplane.errors import BadInput, OperationFailed, UnknownEnvironment
from envplane.lifecycle.approval import approval_required as approval_required
from envplane.names import check_env_name
from envplane.render.model import DesiredEnvironment, Resource
from envplane.render.variables import is_on
from envplane.state.store import EnvironmentRecord
from envplane.targets.base import EnvContext, Target, WakeTarget
from envplane.targets.datacaps import DATA_KINDS, DataTarget, data_resources
from envplane.targets.registry import get_data_target
from envplane.workspace import Workspace


@dataclass(frozen=True)
class EnvData:
    name: str
    record: EnvironmentRecord
    desired: DesiredEnvironment
    ctx: EnvContext
    target: Target
    data: DataTarget

    def resource(self, kind: str) -> Resource | None:
        if kind in DATA_KINDS:  # the driver may name them (targets.base.SnapshotData)
            return next((r for r in self.data_resources if r.kind == kind), None)
        return next((r for r in self.desired.resources if r.kind == kind), None)

    @property
    def data_resources(self) -> list[Resource]:
        return data_resources(self.data, self.desired)

    @property
    def services(self) -> list[Resource]:
        return [r for r in self.desired.resources if r.kind == "service"]


def known(ws: Workspace, env: str) -> EnvironmentRecord | None:
    """The record of `env`; UnknownEnvironment when neither the matrix nor the store knows it."""
    check_env_name(env)
    record = ws.store.get_environment(env)
    if record is None and env not in ws.matrix.environments:
        ws.matrix.environment(env)  # raises with a did-you-mean
        raise UnknownEnvironment(f"unknown environment {env!r}")
    return record


def existing(ws: Workspace, env: str, *, role: str = "environment") -> EnvData:
    record = known(ws, env)
    if record is None or record.status == "destroyed":
        state = "was destroyed" if record else "has not been created"
        raise BadInput(f"{role} {env!r} {state}", hint=f"create it first: envplane create {env}")
    return load(ws, record)


def load(ws: Workspace, record: EnvironmentRecord) -> EnvData:
    desired = desired_from_record(ws, record)
    target_name = record.target or "local"
    return EnvData(
        name=record.name,
        record=record,
        desired=desired,
        ctx=ws.context(record.name, dict(record.ports or {}), project_of(ws)),
        target=ws.target(target_name),
        data=get_data_target(target_name),
    )


def refresh(ws: Workspace, env: str) -> EnvData:
    record = ws.store.get_environment(env)
    assert record is not None
    return load(ws, record)


def encryption_on(ws: Workspace, env: str) -> bool:
    """security.kms_encryption of the environment; on when the matrix no longer says."""
    try:
        security = matrix_for(ws, env).environment(env).security
    except BadInput:
        return True
    return security is not None and is_on(security.kms_encryption)


def retention_days(ws: Workspace, env: str) -> int | None:
    try:
        databases = matrix_for(ws, env).environment(env).databases
    except BadInput:
        return None
    if databases is None or databases.primary is None:
        return None
    return int(databases.primary.backup_retention)


def restart_services(envdata: EnvData) -> None:
    """Start the app's services again (apply is idempotent: it starts what is stopped). A
    target that can start every stopped program at once (WakeTarget) does so first, so the
    replicas come up together rather than one after another; apply then confirms each (and
    says what is wrong, if anything is)."""
    target = envdata.target
    if isinstance(target, WakeTarget) and envdata.services:
        only = replace(envdata.desired, resources=tuple(envdata.services))
        with contextlib.suppress(OperationFailed):
            target.start_all(envdata.ctx, only, lambda: None)
    for res in envdata.services:
        envdata.ctx.progress(f"starting service {res.name}")
        envdata.target.apply(envdata.ctx, "update", res)
