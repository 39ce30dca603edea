"""What the state store hands out: plain frozen records, never live ORM objects.

This module must stay free of SQLAlchemy so `envplane.state` imports fast (the CLI's `--help`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

EnvStatus = Literal["planned", "creating", "ready", "updating", "failed", "destroying", "destroyed"]
OperationStatus = Literal["running", "succeeded", "failed"]
# Resource steps create/update/delete/noop; data steps say what they do to the data.
StepAction = Literal[
    "create", "update", "delete", "noop", "stop", "start", "copy", "import", "export", "mask"
]
StepStatus = Literal["running", "done", "failed", "skipped"]

ENV_STATUSES: tuple[str, ...] = get_args(EnvStatus)
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)
STEP_ACTIONS: tuple[str, ...] = get_args(StepAction)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)


@dataclass(frozen=True)
class EnvironmentRecord:
    name: str
    target: str
    status: EnvStatus
    template: str | None
    ports: dict[str, int]  # allocation key -> port (a copy: changing it changes nothing)
    created_at: datetime
    updated_at: datetime
    destroyed_at: datetime | None
    last_operation_id: str | None
    # {"extends": SRC, "overrides": {...}} for an environment the matrix does not name.
    definition: dict[str, Any] | None = None


@dataclass(frozen=True)
class ResourceRecord:
    env: str
    key: str  # "kind/name"
    kind: str
    digest: str
    spec: Mapping[str, Any]
    updated_at: datetime


@dataclass(frozen=True)
class StepRecord:
    operation_id: str
    index: int
    resource_key: str
    action: StepAction
    status: StepStatus
    detail: str
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class OperationRecord:
    id: str  # "op-20261127-0215-ab12cd": sorts by start time to the minute
    env: str
    kind: str
    status: OperationStatus
    actor: str
    pid: int
    host: str
    plan: Any
    started_at: datetime
    finished_at: datetime | None
    error: str | None
    steps: tuple[StepRecord, ...] = ()


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    env: str | None
    action: str
    detail: str


@dataclass(frozen=True)
class SavedPlanRecord:
    """A plan kept to apply later (`envplane plan --save`, `envplane apply PLAN_ID`)."""

    id: str  # "plan-20261201-0915-ab12cd"
    env: str
    kind: str  # the operation it plans: create | update | destroy
    request: dict[str, Any]  # what was asked (template, target, ...), to plan again
    plan: dict[str, Any]  # the plan document, as shown
    fingerprint: str  # sha256 of what the plan was computed from
    actor: str
    created_at: datetime
    applied_operation_id: str | None
