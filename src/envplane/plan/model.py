"""Plan data: ordered steps on single resources, serialisable into the journal.

`PlanView` is the plan's document: what `plan -o json` prints, what the journal stores and what
the service layer hands the front doors (re-exported by `envplane.service.results`). It lives
here, not in the service layer, because the lifecycle journals it and may not import upward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

StepAction = Literal["create", "update", "delete", "noop"]


@dataclass(frozen=True)
class Cause:
    """The matrix (or config template) line a change comes from (`plan/causes.py`)."""

    file: str
    line: int
    key: str  # the key path written there: "templates.small.security.iam_roles"

    def text(self) -> str:
        return f"{self.file}:{self.line} {self.key}"


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any
    cause: Cause | None = None


@dataclass(frozen=True)
class Step:
    action: StepAction
    key: str  # "kind/name"
    reason: str
    changes: tuple[Change, ...] = ()
    # What a create brings with it, e.g. the Terraform addresses or Kubernetes objects.
    contains: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.key.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split("/", 1)[1]


@dataclass(frozen=True)
class Plan:
    environment: str
    target: str
    operation: str  # create | update | destroy
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    new_ports: dict[str, int] = field(default_factory=dict)
    # The cost change (envplane.cost.delta.CostChange as JSON), added by the lifecycle: the
    # planner sits beside the cost package and knows nothing of prices.
    cost: dict[str, Any] | None = None

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action != "noop")

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "delete": 0, "noop": 0}
        for step in self.steps:
            out[step.action] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        return (
            f"{c['create']} to create, {c['update']} to update, {c['delete']} to delete, "
            f"{c['noop']} unchanged"
        )

    def to_json(self) -> dict[str, Any]:
        """The plan's document (`PlanView`), as journaled and fingerprinted."""
        return PlanView.of(self).model_dump(mode="json")


class _Document(BaseModel):
    model_config = ConfigDict(use_attribute_docstrings=True)


class ChangeView(_Document):
    path: str
    """The changed field of the resource's spec, flattened: "env.LOG_LEVEL", "jobs[0].targets"."""
    old: Any
    new: Any
    cause: dict[str, Any] | None = None
    """The matrix or template line the change comes from: {"file", "line", "key"}; left out
    of the document when none is known (plans journaled before causes read the same)."""

    @model_serializer(mode="wrap")
    def _without_unknown_cause(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("cause") is None:
            data.pop("cause", None)
        return data


class PlanStepView(_Document):
    action: StepAction
    resource: str
    """The resource's key, "kind/name"."""
    reason: str
    changes: list[ChangeView]
    contains: list[str]
    """What a create brings with it, e.g. the Terraform addresses or Kubernetes objects."""


class PlanSummary(_Document):
    """How many steps of each action."""

    create: int
    update: int
    delete: int
    noop: int


class PlanFields(_Document):
    """The plan's document without a constructor: `PlanView`, and a saved plan's view."""

    environment: str
    target: str
    operation: str
    """create, update or destroy."""
    summary: PlanSummary
    steps: list[PlanStepView]
    notes: list[str]
    """What the target cannot honour of the matrix (e.g. multi-AZ on one machine)."""
    cost: dict[str, Any] | None = None
    """The monthly cost change at AWS list prices, per resource line (docs/cost.md)."""

    @model_serializer(mode="wrap")
    def _without_no_cost(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A plan made without prices (the planner's own, the golden files) keeps the
        # document it always had: `cost` appears only when the lifecycle priced the plan.
        doc: dict[str, Any] = handler(self)
        if doc.get("cost", 0) is None:
            del doc["cost"]
        return doc


class PlanView(PlanFields):
    @classmethod
    def of(cls, plan: Plan) -> PlanView:
        return cls(
            environment=plan.environment,
            target=plan.target,
            operation=plan.operation,
            summary=PlanSummary(**plan.counts()),
            steps=[
                PlanStepView(
                    action=s.action,
                    resource=s.key,
                    reason=s.reason,
                    changes=[
                        ChangeView(
                            path=c.path,
                            old=c.old,
                            new=c.new,
                            cause=vars(c.cause) if c.cause else None,
                        )
                        for c in s.changes
                    ],
                    contains=list(s.contains),
                )
                for s in plan.steps
            ],
            notes=list(plan.notes),
            cost=plan.cost,
        )
