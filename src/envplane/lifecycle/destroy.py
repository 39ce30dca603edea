"""destroy: remove every resource, then prove nothing is left (processes, ports, dirs, secrets)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from envplane.desired import project_of, recorded_resources
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.engine.runner import run_steps
from envplane.errors import BadInput, OperationFailed
from envplane.lifecycle import approval
from envplane.lifecycle.costs import with_destroy_cost
from envplane.lifecycle.documents import ResourcePlan
from envplane.names import check_env_name
from envplane.plan.diff import destroy_plan
from envplane.plan.model import Plan
from envplane.targets.registry import spec as target_spec
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord


def destroy(
    ws: Workspace,
    env: str,
    *,
    force: bool = False,
    dry_run: bool = False,
    resume_id: str | None = None,
    show: Callable[[Plan], None] | None = None,
    confirm: Callable[[Plan], bool] | None = None,
) -> Outcome:
    """Plan, call `show` with the plan, then destroy unless `dry_run`. Without `force`,
    `confirm` (when given) must agree, after the plan was shown.

    An environment destroyed already is done with: nothing is asked or changed, and the
    outcome (not applied) says so in its messages, so a cleanup can be repeated. One that
    never existed is bad input."""
    check_env_name(env)
    store = ws.store
    record = store.get_environment(env)
    if record is None:
        raise BadInput(f"environment {env!r} does not exist")
    kinds = target_spec(record.target or "local").kinds
    plan = destroy_plan(env, record.target or "local", store.resources(env), kinds)
    plan = with_destroy_cost(ws, env, plan)
    outcome = Outcome(env, plan, resume_id)
    if record.status == "destroyed" and resume_id is None:
        outcome.messages.append(f"{env} is already destroyed")
        return outcome
    recorded = recorded_resources(ws, env)
    if show is not None:
        show(plan)
    if dry_run:
        return outcome
    approval.guard(ws, env, doing="destroy", force=force, again=f"envplane destroy {env}")
    if not force and confirm is not None and not confirm(plan):
        raise BadInput("confirmation did not match; nothing was destroyed", hint="or pass --force")
    started = time.monotonic()
    ports = dict(record.ports or {})
    target = ws.target(record.target or "local")
    ctx = ws.context(env, ports, project_of(ws))
    with locked_operation(
        store, env, "destroy", plan.to_json(), resume_id=resume_id, events=ws.events
    ) as op_id:
        outcome.operation_id = op_id
        store.save_environment(env, status="destroying", last_operation_id=op_id)
        first = 0
        if resume_id:
            op = store.get_operation(resume_id)
            first = len(op.steps) if op else 0
        try:
            run_steps(
                store, target, ctx, op_id, plan, recorded, first_index=first, events=ws.events
            )
            target.teardown(ctx)
            store.delete_secrets(env)
        except BaseException:
            store.save_environment(env, status="failed")
            raise
        left = target.leftovers(ctx, ports)
        left += [f"secret {name!r} still in the state store" for name in store.secret_names(env)]
        left += [f"resource {key} still recorded" for key in store.resources(env)]
        if left:
            store.save_environment(env, status="failed")
            raise OperationFailed(
                f"destroy of {env!r} left {len(left)} thing(s) behind:\n  - " + "\n  - ".join(left),
                operation_id=op_id,
                hint=f"stop or remove what is listed, then run `envplane resume {op_id}`",
            )
        store.save_environment(env, status="destroyed", ports={})
        store.clear_live(env)  # a later create starts from the matrix's initial versions
        store.audit(env, "destroyed", f"operation {op_id}")
    outcome.applied = True
    outcome.seconds = time.monotonic() - started
    return outcome


def resume_destroy(ws: Workspace, op: OperationRecord, _plan: ResourcePlan) -> Outcome:
    return destroy(ws, op.env, force=True, resume_id=op.id)


registry.register(
    registry.OperationKind(
        "destroy", ResourcePlan, resume_destroy, "remove an environment, verified"
    )
)
