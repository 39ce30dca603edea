"""Running a deploy's plan as one journaled operation: fresh, resumed after a kill, or a
paused canary continued; the registered operation kinds deploy and rollback."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from envplane.delivery.documents import DeployPlan
from envplane.delivery.planning import DeployResult, ready_environment
from envplane.delivery.rollouts import new_rollout
from envplane.delivery.scaledown import retire, start_in_background
from envplane.delivery.verdicts import Paused, RolledBack
from envplane.desired import matrix_for
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput
from envplane.plan.model import Plan

if TYPE_CHECKING:
    from envplane.delivery.cloud_rollout import CloudRollout
    from envplane.delivery.rollout import Rollout
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.records import OperationRecord, RolloutRecord
    from envplane.workspace import Workspace


def run_plan(
    ws: Workspace,
    plan: DeployPlan,
    result: DeployResult,
    settings: DeploymentStrategy,
    *,
    resume: OperationRecord | None = None,
    settle_only: bool = False,
) -> DeployResult:
    """Run the plan as one operation: `resume` takes a killed one over (it settles forward or
    back, see resumes_forward); `settle_only` accepts what a paused rollout already moved
    (a blue-green held after its switch) and finishes it."""
    env = plan.environment
    started = time.monotonic()
    store = ws.store
    with locked_operation(
        store,
        env,
        plan.kind,
        plan.model_dump(),
        resume_id=resume.id if resume else None,
        events=ws.events,
    ) as op_id:
        result.operation_id = op_id
        rollout_id = plan.rollout_id or op_id
        if resume is None:
            if plan.rollout_id is None:
                store.start_rollout(
                    op_id,
                    env,
                    plan.release_id,
                    kind=plan.kind,
                    strategy=plan.strategy,
                    previous_release_id=plan.previous_release_id,
                    detail={
                        "forced": plan.forced,
                        "promotion": plan.promotion_id,
                        "backup_id": plan.backup_id if plan.kind == "deploy" else None,
                        "rows_at_backup": plan.rows_at_backup if plan.kind == "deploy" else {},
                    },
                )
            else:
                store.update_rollout(rollout_id, status="running", detail={"continued_by": op_id})
            if plan.forced:
                store.audit(env, "forced", f"{plan.kind} {plan.release_id} past approval")
        rollout = new_rollout(
            ws,
            plan,
            op_id,
            strategy=settings,
            first_index=len(resume.steps) if resume else 0,
            rollout_id=rollout_id,
        )
        retire_retained(ws, env, rollout, only=None if resume else [m.service for m in plan.moves])
        try:
            if settle_only:
                rollout.settle(plan.moves, to_new=True)
            elif resume is None:
                rollout.run()
            else:
                forward = resumes_forward(store.get_rollout(rollout_id), plan)
                rollout.settle(plan.moves, to_new=forward)
                if not forward:
                    raise RolledBack(
                        f"the interrupted rollout of {plan.release_id} was rolled back",
                        operation_id=op_id,
                    )
        except Paused:
            store.update_rollout(rollout_id, status="paused", detail=rollout.report.as_detail())
            result.status = "paused"
            result.detail = rollout.report.as_detail()
            raise
        except RolledBack:
            store.update_rollout(
                rollout_id, status="rolled_back", detail=rollout.report.as_detail(), finished=True
            )
            store.audit(env, "rolled back", f"{plan.release_id}")
            raise
        except BaseException:
            store.update_rollout(
                rollout_id, status="failed", detail=rollout.report.as_detail(), finished=True
            )
            raise
        store.update_rollout(
            rollout_id,
            status="succeeded",
            phase="done",
            detail=rollout.report.as_detail(),
            finished=True,
        )
        store.audit(env, plan.kind, f"{plan.release_id} by {plan.strategy}")
    live = store.get_live(env)
    if live is not None and live.retained:
        start_in_background(ws, env)  # stops the kept color when its delay is over
    result.status = "succeeded"
    result.seconds = time.monotonic() - started
    result.detail = rollout.report.as_detail()
    result.messages += rollout.report.messages
    return result


def resumes_forward(rollout: RolloutRecord | None, plan: DeployPlan) -> bool:
    """A killed rollout is finished when the new version had taken all the traffic it was
    going to (a recreate or rolling deploy, a blue-green whose every service switched);
    anything else (a canary, a blue-green before its last switch) is rolled back."""
    if plan.kind == "rollback" or plan.strategy in ("recreate", "rolling"):
        return True
    detail = rollout.detail if rollout is not None else {}
    if plan.strategy != "blue_green":
        return False
    switched = detail.get("switched_services")
    if isinstance(switched, list):
        # Several services: forward only when every one switched (and so passed its checks
        # before the switch); otherwise all go back together, as on a failure.
        return all(m.service in switched for m in plan.moves)
    return bool(detail.get("switched"))  # recorded before per-service marks


def retire_retained(
    ws: Workspace, env: str, rollout: Rollout | CloudRollout, *, only: list[str] | None
) -> None:
    """Stop the old colors blue-green kept, whose delay is over (or, for the services a new
    rollout moves, at once: it needs that color)."""
    live = ws.store.get_live(env)
    if live is None or not live.retained:
        return
    kept = retire(
        dict(live.retained),
        replicas=lambda service, color: rollout.delivery.replicas(rollout.ctx, service, color),
        stop=rollout.stop,
        only=only,
    )
    ws.store.set_retained(env, kept)


def resume_deploy(ws: Workspace, op: OperationRecord, plan: DeployPlan) -> Outcome:
    settings = matrix_for(ws, op.env).strategy_for(op.env)
    started = time.monotonic()
    result = DeployResult(plan)
    messages: list[str] = []
    try:
        run_plan(ws, plan, result, settings, resume=op)
        messages.append(f"{plan.kind} of {plan.release_id} finished")
    except RolledBack as exc:
        messages.append(exc.message)
    return Outcome(
        op.env,
        Plan(op.env, "local", plan.kind, ()),
        op.id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=messages,
    )


def continue_canary(ws: Workspace, env: str) -> DeployResult:
    """Continue a paused rollout as a new operation: a canary from the step it held at (the
    one after a pause, or the analysis that was inconclusive); a blue-green held by an
    inconclusive post-promotion analysis is finished as it is (the operator accepts it)."""
    ready_environment(ws, env)
    active = ws.store.active_rollout(env)
    if active is None or active.status != "paused":
        raise BadInput(f"no paused rollout in {env}", hint=f"envplane status {env}")
    op = ws.store.get_operation(active.id)
    assert op is not None
    plan = registry.read_plan(op)
    assert isinstance(plan, DeployPlan)
    step = int(active.detail.get("step", 0))
    plan = plan.model_copy(update={"rollout_id": active.id, "first_step": step})
    settings = matrix_for(ws, env).strategy_for(env)
    return run_plan(ws, plan, DeployResult(plan), settings, settle_only=plan.strategy != "canary")


registry.register(
    registry.OperationKind(
        "deploy", DeployPlan, resume_deploy, "deploy a release into an environment"
    )
)
registry.register(
    registry.OperationKind(
        "rollback", DeployPlan, resume_deploy, "roll an environment back to an earlier release"
    )
)
