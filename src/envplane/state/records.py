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
# Resource steps create/update/delete/noop; data steps say what they do to the data;
# delivery steps route traffic, analyze a canary, migrate a schema, wait out a pause.
StepAction = Literal[
    "create",
    "update",
    "delete",
    "noop",
    "stop",
    "start",
    "copy",
    "import",
    "export",
    "mask",
    "route",
    "analyze",
    "migrate",
    "wait",
]
StepStatus = Literal["running", "done", "failed", "skipped"]
# Delivery (migration 0004): releases, their rollouts into environments, promotions.
RolloutKind = Literal["deploy", "rollback"]
RolloutStatus = Literal["running", "paused", "succeeded", "failed", "rolled_back"]
PromotionStatus = Literal["pending", "approved", "rejected", "deployed", "failed"]
Decision = Literal["approve", "reject"]
Color = Literal["blue", "green"]

ENV_STATUSES: tuple[str, ...] = get_args(EnvStatus)
OPERATION_STATUSES: tuple[str, ...] = get_args(OperationStatus)
STEP_ACTIONS: tuple[str, ...] = get_args(StepAction)
STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
ROLLOUT_KINDS: tuple[str, ...] = get_args(RolloutKind)
ROLLOUT_STATUSES: tuple[str, ...] = get_args(RolloutStatus)
PROMOTION_STATUSES: tuple[str, ...] = get_args(PromotionStatus)
DECISIONS: tuple[str, ...] = get_args(Decision)
COLORS: tuple[str, ...] = get_args(Color)


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


@dataclass(frozen=True)
class ReleaseRecord:
    """What a release deploys: a version of each service and the digest of their config."""

    id: str  # "rel-20261201-091500-ab12cd"
    created_at: datetime
    created_by: str
    note: str | None
    services: dict[str, str]  # service -> version
    config_digest: str
    source_env: str | None  # the environment it was cut from, if any


@dataclass(frozen=True)
class RolloutRecord:
    """One deploy (or rollback) of a release into an environment, by one operation."""

    id: str  # the id of the operation that performs it
    env: str
    release_id: str
    kind: RolloutKind
    strategy: str  # "recreate", "rolling", "blue-green", "canary", ...
    status: RolloutStatus
    phase: str  # free text: "switch", "step-2", ...
    actor: str
    started_at: datetime
    finished_at: datetime | None
    previous_release_id: str | None  # what was live before it
    detail: dict[str, Any]  # downtime seconds, analysis results, backup id, ...


@dataclass(frozen=True)
class LiveRecord:
    """What runs in an environment now."""

    env: str
    release_id: str | None
    services: dict[str, dict[str, Any]]  # service -> {"version": ..., "color": "blue"|"green"}
    since: datetime
    rollout_id: str | None
    # service -> {"color", "version", "until": ISO time}: an old color kept for a fast rollback
    retained: dict[str, dict[str, Any]]
    previous_release_id: str | None


@dataclass(frozen=True)
class ApprovalRecord:
    promotion_id: str
    actor: str
    decision: Decision
    at: datetime
    message: str | None


@dataclass(frozen=True)
class PromotionRecord:
    """A request to deploy a release into an environment, and the decisions on it."""

    id: str  # "prm-20261201-091500-ab12cd"
    release_id: str
    env: str  # the target environment
    from_env: str | None
    requested_by: str
    requested_at: datetime
    status: PromotionStatus
    approvals_needed: int
    rollout_id: str | None
    message: str | None
    decisions: tuple[ApprovalRecord, ...] = ()  # oldest first


@dataclass(frozen=True)
class ValidationRecord:
    id: int
    env: str
    level: str
    release_id: str | None
    passed: bool
    at: datetime
    actor: str
    summary: dict[str, Any]
