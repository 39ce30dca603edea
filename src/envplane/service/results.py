"""The service layer's results as models: one per `-o json` document (those of the data
commands - backup, backups, restore, clone, sync - are in `results_data`).

`View.of(result)` builds the document from the library's result object; its
`model_dump(mode="json")` is exactly what `-o json` prints, and what the REST API will return.
Fields are in the document's key order. The views hold no logic of their own: what a result
means is decided below, in the library.

The plan's document (`PlanView`) lives with the plan (`envplane.plan.model`), since the
lifecycle journals it and may not import this layer; it is re-exported here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from envplane.plan.model import ChangeView, PlanFields, PlanStepView, PlanSummary, PlanView
from envplane.state.records import OperationStatus, StepAction, StepStatus
from envplane.targets.checks import Status

if TYPE_CHECKING:
    from envplane.check import CheckReport
    from envplane.lifecycle.inspect import EnvironmentInfo
    from envplane.service.plans import SavedPlan
    from envplane.service.rendering import RenderedFiles
    from envplane.state.records import OperationRecord, StepRecord
    from envplane.validate.checks import Report

__all__ = [
    "ChangeView",
    "CheckView",
    "CheckedEnvironmentView",
    "EnvironmentView",
    "MatrixCheckView",
    "OperationSummary",
    "OperationView",
    "PlanFields",
    "PlanStepView",
    "PlanSummary",
    "PlanView",
    "RenderView",
    "SavedPlanView",
    "ServiceView",
    "StepView",
    "ValidationView",
    "View",
    "iso",
]


def iso(moment: datetime, timespec: str = "auto") -> str:
    """ISO 8601 in UTC with its offset: "2026-11-27T02:15:03.123456+00:00" (a naive moment
    is taken as UTC, as the state store keeps them). The text output uses timespec="seconds"."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return aware.isoformat(timespec=timespec)


Timestamp = Annotated[datetime, PlainSerializer(iso, return_type=str)]
"""A moment, in ISO 8601, UTC with its offset: "2026-11-27T02:15:03.123456+00:00"."""


class View(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


# ---- plans -------------------------------------------------------------------------------


class _PlanId(View):
    plan_id: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """The saved plan's id, for `envplane apply`; absent when the plan was not saved."""


class SavedPlanView(PlanFields, _PlanId):  # bases' fields go last base first: plan_id leads
    """A plan from `envplane plan` (with --save: its id first), and the body of a plan file."""

    @classmethod
    def of(cls, saved: SavedPlan) -> SavedPlanView:
        return cls(plan_id=saved.id, **dict(PlanView.of(saved.plan)))


# ---- environments and operations ---------------------------------------------------------


class OperationSummary(View):
    id: str
    kind: str
    status: OperationStatus
    started_at: Timestamp
    finished_at: Timestamp | None
    error: str | None

    @classmethod
    def of(cls, op: OperationRecord) -> OperationSummary:
        return cls(
            id=op.id,
            kind=op.kind,
            status=op.status,
            started_at=op.started_at,
            finished_at=op.finished_at,
            error=op.error,
        )


class StepView(View):
    operation_id: str
    index: int
    resource_key: str
    """The step's key: a resource ("kind/name") or a data stage ("data/mask")."""
    action: StepAction
    status: StepStatus
    detail: str
    started_at: Timestamp
    finished_at: Timestamp | None

    @classmethod
    def of(cls, step: StepRecord) -> StepView:
        return cls(
            operation_id=step.operation_id,
            index=step.index,
            resource_key=step.resource_key,
            action=step.action,
            status=step.status,
            detail=step.detail,
            started_at=step.started_at,
            finished_at=step.finished_at,
        )


class OperationView(OperationSummary):
    """One entry of `history`."""

    environment: str
    steps: list[StepView]

    @classmethod
    def of(cls, op: OperationRecord) -> OperationView:
        return cls(
            **dict(OperationSummary.of(op)),
            environment=op.env,
            steps=[StepView.of(s) for s in op.steps],
        )


class ServiceView(View):
    ready: int
    desired: int
    healthy: bool
    version: str | None = None


class EnvironmentView(View):
    """One environment, as `info` and `list` show it."""

    name: str
    status: str
    target: str | None
    region: str | None
    template: str | None
    endpoints: dict[str, str]
    """Endpoint name -> URL; passwords are '***' unless secrets were asked for."""
    services: dict[str, ServiceView]
    last_operation: OperationSummary | None
    notes: list[str]
    """What the target cannot honour of the matrix, or why the live part is missing."""
    release: str | None = None
    """The live release (`envplane status ENV` shows what is in flight)."""
    platform: str | None = None
    """What it runs on and its state (the cloud: the EKS cluster's status and version)."""

    @classmethod
    def of(cls, info: EnvironmentInfo, *, show_secrets: bool = False) -> EnvironmentView:
        return cls(
            name=info.name,
            status=info.status,
            target=info.target,
            region=info.region,
            template=info.template,
            endpoints={
                e.name: (e.secret_url if show_secrets and e.secret_url else e.url)
                for e in info.endpoints
            },
            services={
                s.name: ServiceView(
                    ready=s.ready,
                    desired=s.desired,
                    healthy=s.healthy,
                    version=info.versions.get(s.name),
                )
                for s in info.services
            },
            release=info.release,
            platform=info.platform,
            last_operation=OperationSummary.of(info.last_operation)
            if info.last_operation
            else None,
            notes=list(info.notes),
        )


# ---- check, validation and rendering -----------------------------------------------------


class CheckedEnvironmentView(View):
    name: str
    resources: int
    """What the local target would run of it (with placeholder ports)."""
    services: int


class MatrixCheckView(View):
    """`envplane check`: the matrix loaded and every environment's templates rendered (a
    matrix that does not is an error, exit 2, not a document)."""

    matrix: str
    """The matrix file."""
    ok: bool
    project: str
    environments: list[CheckedEnvironmentView]

    @classmethod
    def of(cls, report: CheckReport) -> MatrixCheckView:
        return cls(
            matrix=report.matrix,
            ok=True,
            project=report.project,
            environments=[
                CheckedEnvironmentView(name=e.name, resources=e.resources, services=e.services)
                for e in report.environments
            ],
        )


class CheckView(View):
    category: str
    name: str
    status: Status
    detail: str
    seconds: float


class ValidationView(View):
    environment: str
    level: str
    ok: bool
    """No check failed (skipped checks do not count)."""
    checks: list[CheckView]

    @classmethod
    def of(cls, report: Report) -> ValidationView:
        return cls(
            environment=report.environment,
            level=report.level,
            ok=report.ok,
            checks=[
                CheckView(
                    category=c.category,
                    name=c.name,
                    status=c.status,
                    detail=c.detail,
                    seconds=c.seconds,
                )
                for c in report.checks
            ],
        )


class RenderView(View):
    environment: str
    target: str
    files: list[str]
    resources: dict[str, str]
    """Resource key -> the digest of its spec."""
    notes: list[str]

    @classmethod
    def of(cls, done: RenderedFiles) -> RenderView:
        return cls(
            environment=done.environment,
            target=done.target,
            files=[str(p) for p in done.files],
            resources={r.key: r.digest for r in done.desired.resources},
            notes=list(done.desired.notes),
        )
