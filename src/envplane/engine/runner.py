"""A plan's resource steps as engine steps: each applies (or deletes) one resource on the
target driver and records it in the store when it is done.

Creates and updates follow the resources' dependencies; deletes run one by one, in the
plan's (reverse dependency) order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from envplane.engine import steps as engine_steps
from envplane.events import EventSink, discard
from envplane.plan.model import Plan
from envplane.plan.model import Step as PlanStep
from envplane.render.model import Resource
from envplane.targets.base import EnvContext, Target

if TYPE_CHECKING:
    from envplane.state.store import StateStore


def resource_step(
    target: Target, ctx: EnvContext, env: str, step: PlanStep, resource: Resource
) -> engine_steps.Step:
    def work() -> None:
        if step.action == "delete":
            target.delete(ctx, resource)
        elif step.action in ("create", "update"):
            target.apply(ctx, step.action, resource)

    def record(store: StateStore) -> None:
        if step.action == "delete":
            store.forget_resource(env, step.key)
        else:
            spec = dict(resource.spec)
            store.record_resource(env, step.key, resource.kind, resource.digest, spec)

    return engine_steps.Step(step.key, step.action, work, record=record)


def run_steps(
    store: StateStore,
    target: Target,
    ctx: EnvContext,
    op_id: str,
    plan: Plan,
    resources: Mapping[str, Resource],
    *,
    first_index: int = 0,
    events: EventSink = discard,
) -> int:
    """Execute every non-noop step of the plan; returns how many ran. Raises OperationFailed."""
    changes = plan.changes
    steps = [resource_step(target, ctx, plan.environment, s, resources[s.key]) for s in changes]
    if any(s.action == "delete" for s in changes):
        steps = engine_steps.in_sequence(steps)
    else:
        keys = {s.key for s in changes}
        steps = [
            engine_steps.Step(
                s.key,
                s.action,
                s.work,
                after=tuple(d for d in resources[s.key].depends_on if d in keys),
                record=s.record,
            )
            for s in steps
        ]
    return engine_steps.run(store, op_id, steps, first_index=first_index, events=events)
