"""The operation registry: every operation kind, its typed plan, and how it is resumed.

Each capability registers its kinds when its package is imported (lifecycle: create, update,
destroy; data: clone, sync, restore; ...). `resume` reads an operation's journaled plan back
as that kind's model and hands it to the kind's handler, so the engine never imports the
layers above it and a new kind is one `register` call, not a new branch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from envplane.engine.outcome import Outcome
from envplane.errors import BadInput
from envplane.plan.model import Plan

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord
    from envplane.workspace import Workspace

P = TypeVar("P", bound=BaseModel)


class OperationPlan(BaseModel):
    """Base of every kind's journaled plan: unknown keys of older journals are ignored."""

    model_config = {"extra": "ignore", "frozen": True}


@dataclass(frozen=True)
class OperationKind(Generic[P]):
    name: str
    plan: type[P]  # the model the journal's plan is read back as
    resume: Callable[[Workspace, OperationRecord, P], Outcome]
    summary: str  # one line for docs and `--help`


# Runs after an operation of that kind was resumed: (workspace, environment) -> a message or
# None. A capability above the lifecycle finishes what it started inside one of the
# lifecycle's operations (a clone's data copy after its interrupted create).
AfterResume = Callable[["Workspace", str], str | None]

_KINDS: dict[str, OperationKind[Any]] = {}
_AFTER: dict[str, list[AfterResume]] = {}


def register(kind: OperationKind[P]) -> OperationKind[P]:
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"operation kind {kind.name!r} registered twice")
    _KINDS[kind.name] = kind
    return kind


def after_resume(kind_name: str, hook: AfterResume) -> None:
    hooks = _AFTER.setdefault(kind_name, [])
    if hook not in hooks:
        hooks.append(hook)


def kinds() -> dict[str, OperationKind[Any]]:
    return dict(_KINDS)


def get(name: str) -> OperationKind[Any]:
    found = _KINDS.get(name)
    if found is None:
        raise BadInput(
            f"operations of kind {name!r} cannot be resumed",
            hint=f"resumable kinds: {', '.join(sorted(_KINDS))}",
        )
    return found


def read_plan(op: OperationRecord) -> BaseModel:
    """The operation's journaled plan as its kind's model."""
    kind = get(op.kind)
    try:
        plan: BaseModel = kind.plan.model_validate(op.plan)
    except ValidationError as exc:
        raise BadInput(
            f"operation {op.id} ({op.kind}) has no resumable plan in the journal: "
            f"{exc.errors()[0]['msg']}"
        ) from None
    return plan


def resume(ws: Workspace, op_id: str) -> Outcome:
    """Finish an interrupted or failed operation, from where the world is now."""
    op = ws.store.get_operation(op_id)
    if op is None:
        raise BadInput(f"no operation {op_id!r}", hint="`envplane history` lists operations")
    record = ws.store.get_environment(op.env)
    if op.status == "succeeded" or record is None:
        empty = Plan(op.env, record.target if record else "local", op.kind, ())
        return Outcome(
            op.env, empty, op_id, messages=[f"operation {op_id} already finished ({op.status})"]
        )
    kind = get(op.kind)
    outcome = kind.resume(ws, op, read_plan(op))
    for hook in _AFTER.get(op.kind, []):
        message = hook(ws, op.env)
        if message:
            outcome.messages.append(message)
    return outcome
