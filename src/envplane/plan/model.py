"""Plan data: ordered steps on single resources, serialisable into the journal."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

StepAction = Literal["create", "update", "delete", "noop"]


@dataclass(frozen=True)
class Change:
    path: str
    old: Any
    new: Any


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
        return {
            "environment": self.environment,
            "target": self.target,
            "operation": self.operation,
            "summary": self.counts(),
            "steps": [
                {
                    "action": s.action,
                    "resource": s.key,
                    "reason": s.reason,
                    "changes": [asdict(c) for c in s.changes],
                    "contains": list(s.contains),
                }
                for s in self.steps
            ],
            "notes": list(self.notes),
        }
