"""deploy, rollback and the continuation of a paused canary: journaled operations on one
environment, locked, resumable after a kill."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from envplane.delivery.documents import DeployPlan, ServiceMove
from envplane.delivery.releases import check_version, get_release
from envplane.delivery.rollout import Paused, RolledBack, Rollout
from envplane.desired import matrix_for, running_services
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, Blocked
from envplane.names import check_env_name
from envplane.plan.model import Plan
from envplane.render.model import other_color
from envplane.targets.registry import get_delivery

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.records import OperationRecord, ReleaseRecord, RolloutRecord
    from envplane.workspace import Workspace


@dataclass
class DeployResult:
    plan: DeployPlan
    operation_id: str | None = None
    status: str = "planned"  # planned | succeeded | paused | unchanged | rolled_back
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def _ready_environment(ws: Workspace, env: str) -> None:
    check_env_name(env)
    matrix_for(ws, env).environment(env)
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} does not exist", hint=f"envplane create {env}")
    if record.status != "ready":
        last = record.last_operation_id
        raise BadInput(
            f"environment {env!r} is {record.status}: a release goes only into a ready one",
            hint=f"finish it first: envplane resume {last}" if last else None,
        )
    get_delivery(record.target or "local")


def order_services(matrix: Matrix, env: str, names: list[str]) -> list[str]:
    """`names` with each service after those it depends on (the matrix refused cycles)."""
    services = matrix.services_for(env)
    out: list[str] = []

    def visit(name: str) -> None:
        if name in out:
            return
        for other in services[name].depends_on:
            if other in names:
                visit(other)
        out.append(name)

    for name in names:
        visit(name)
    return out


def choose_strategy(strategy: DeploymentStrategy, asked: str | None, env: str) -> str:
    allowed = strategy.strategies()
    chosen = asked or strategy.primary
    if chosen not in allowed:
        raise BadInput(
            f"--strategy {chosen}: {env} deploys by {strategy.primary}"
            + (f" or {', '.join(strategy.alternatives)}" if strategy.alternatives else ""),
            hint="the environment's `deployment_strategies` entry lists its alternatives",
        )
    return chosen


def plan_deploy(
    ws: Workspace,
    env: str,
    release_id: str,
    *,
    strategy: str | None = None,
    kind: str = "deploy",
) -> DeployPlan:
    """What deploying `release_id` into `env` moves; bad input changes nothing."""
    _ready_environment(ws, env)
    release = get_release(ws, release_id)
    matrix = matrix_for(ws, env)
    settings = matrix.strategy_for(env)
    chosen = choose_strategy(settings, strategy, env)
    services = matrix.services_for(env)
    unknown = sorted(set(release.services) - set(services))
    if unknown:
        raise BadInput(
            f"release {release.id} names {', '.join(unknown)}, which {env} does not run",
            hint=f"{env} runs: {', '.join(services) or 'no services'}",
        )
    now = running_services(ws, env, matrix)
    live = ws.store.get_live(env)
    moves: list[ServiceMove] = []
    for name in order_services(matrix, env, sorted(release.services)):
        version = check_version(name, services[name], release.services[name])
        current = now[name]
        if version == current.version:
            continue
        to_color = current.color if chosen == "recreate" else other_color(current.color)
        moves.append(
            ServiceMove(
                service=name,
                from_version=current.version,
                from_color=current.color,
                to_version=version,
                to_color=to_color,
                replicas=services[name].replicas,
                migrate=bool(services[name].migrate),
            )
        )
    return DeployPlan(
        environment=env,
        kind="rollback" if kind == "rollback" else "deploy",
        release_id=release.id,
        previous_release_id=live.release_id if live is not None else None,
        strategy=chosen,
        moves=moves,
    )


def refuse_in_flight(ws: Workspace, env: str) -> None:
    active = ws.store.active_rollout(env)
    if active is None:
        return
    if active.status == "paused":
        raise Blocked(
            f"a canary of {active.release_id} in {env} is paused ({active.phase})",
            hint=f"continue it (envplane promote --continue --to {env}) "
            f"or roll it back (envplane rollback {env})",
        )
    op = ws.store.get_operation(active.id)
    if op is not None and op.status == "running":
        return  # the lock tells whether it still runs; a dead one is resumed by its id
    raise Blocked(
        f"the rollout {active.id} of {active.release_id} in {env} did not finish",
        hint=f"finish it: envplane resume {active.id}",
    )


def deploy(
    ws: Workspace,
    env: str,
    release_id: str,
    *,
    strategy: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    promotion_id: str | None = None,
    kind: str = "deploy",
    data: str = "ask",
    backup_id: str | None = None,
) -> DeployResult:
    """Deploy a release. Into an environment with `approval_required`, only a promotion
    (`promotion_id`) or `force` (audited) may."""
    plan = plan_deploy(ws, env, release_id, strategy=strategy, kind=kind)
    settings = matrix_for(ws, env).strategy_for(env)
    if settings.approval_required and promotion_id is None and not force and kind == "deploy":
        raise Blocked(
            f"{env} requires approval: a release goes there only through a promotion",
            hint=f"envplane promote {release_id} --to {env} (or --force, which is audited)",
        )
    plan = plan.model_copy(
        update={"forced": force, "promotion_id": promotion_id, "data": data, "backup_id": backup_id}
    )
    result = DeployResult(plan)
    if dry_run:
        return result
    if not plan.moves:
        result.status = "unchanged"
        result.messages.append(f"{env} already runs every version of {plan.release_id}")
        refuse_in_flight(ws, env)
        live = ws.store.get_live(env)
        if live is None or live.release_id != plan.release_id:
            # Nothing moves, but this release is what runs now (a promotion's gates ask).
            ws.store.set_live(
                env,
                release_id=plan.release_id,
                services={
                    n: {"version": r.version, "color": r.color}
                    for n, r in running_services(ws, env).items()
                },
                rollout_id=live.rollout_id if live else None,
                retained=dict(live.retained) if live else None,
                previous_release_id=live.release_id if live else None,
            )
            ws.store.audit(env, "deploy", f"{plan.release_id}: already running, now live")
        return result
    refuse_in_flight(ws, env)
    if plan.previous_release_id is None:
        plan = plan.model_copy(update={"previous_release_id": _baseline(ws, env).id})
        result.plan = plan
    if any(m.migrate for m in plan.moves) and backup_id is None:
        plan = plan.model_copy(update={"backup_id": _backup_before_migration(ws, env)})
        result.plan = plan
    return _run(ws, plan, result, settings)


def _baseline(ws: Workspace, env: str) -> ReleaseRecord:
    """What `env` ran before its first release, recorded as a release of its own: the first
    deploy can be rolled back like any other."""
    from envplane.delivery.releases import config_digest

    versions = {name: run.version for name, run in running_services(ws, env).items()}
    return ws.store.create_release(
        versions,
        config_digest=config_digest(matrix_for(ws, env), versions),
        note=f"what {env} ran before its first release",
        source_env=env,
    )


def _backup_before_migration(ws: Workspace, env: str) -> str | None:
    """The fast (physical) backup of the data a migration is about to change, taken just
    before the deploy; None when the environment holds no data."""
    from envplane.data.backup import backup
    from envplane.data.envs import existing

    if not existing(ws, env).data_resources:
        return None
    done = backup(ws, env, "data")
    assert done.manifest is not None
    ws.progress(f"backup {done.manifest.backup_id} taken before the migration")
    return done.manifest.backup_id


def _run(
    ws: Workspace,
    plan: DeployPlan,
    result: DeployResult,
    settings: DeploymentStrategy,
    *,
    resume: OperationRecord | None = None,
    settle_only: bool = False,
) -> DeployResult:
    """Run the plan as one operation: `resume` takes a killed one over (it settles forward or
    back, see _resumes_forward); `settle_only` accepts what a paused rollout already moved
    (a blue-green held after its switch) and finishes it."""
    env = plan.environment
    started = time.monotonic()
    record = ws.store.get_environment(env)
    assert record is not None
    delivery = get_delivery(record.target or "local")
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
                    },
                )
            else:
                store.update_rollout(rollout_id, status="running", detail={"continued_by": op_id})
            if plan.forced:
                store.audit(env, "forced", f"{plan.kind} {plan.release_id} past approval")
        rollout = Rollout(
            ws,
            plan,
            op_id,
            delivery=delivery,
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
                forward = _resumes_forward(store.get_rollout(rollout_id), plan)
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
    result.status = "succeeded"
    result.seconds = time.monotonic() - started
    result.detail = rollout.report.as_detail()
    result.messages += rollout.report.messages
    return result


def _resumes_forward(rollout: RolloutRecord | None, plan: DeployPlan) -> bool:
    """A killed rollout is finished when the new version had taken all the traffic it was
    going to (a recreate or rolling deploy, a blue-green switch that completed); anything
    else (a canary, a blue-green before its switch) is rolled back."""
    if plan.kind == "rollback" or plan.strategy in ("recreate", "rolling"):
        return True
    detail = rollout.detail if rollout is not None else {}
    return plan.strategy == "blue_green" and bool(detail.get("switched"))


def retire_retained(ws: Workspace, env: str, rollout: Rollout, *, only: list[str] | None) -> None:
    """Stop the old colors blue-green kept, whose delay is over (or, for the services a new
    rollout moves, at once: it needs that color)."""
    live = ws.store.get_live(env)
    if live is None or not live.retained:
        return
    now = datetime.now(UTC)
    kept: dict[str, Any] = {}
    for service, entry in dict(live.retained).items():
        until = datetime.fromisoformat(str(entry.get("until")))
        if (only is not None and service in only) or until <= now:
            for replica in rollout.delivery.replicas(rollout.ctx, service, str(entry["color"])):
                rollout.stop(service, str(entry["color"]), replica)
        else:
            kept[service] = entry
    ws.store.set_retained(env, kept)


def resume_deploy(ws: Workspace, op: OperationRecord, plan: DeployPlan) -> Outcome:
    settings = matrix_for(ws, op.env).strategy_for(op.env)
    started = time.monotonic()
    result = DeployResult(plan)
    messages: list[str] = []
    try:
        _run(ws, plan, result, settings, resume=op)
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
    _ready_environment(ws, env)
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
    return _run(ws, plan, DeployResult(plan), settings, settle_only=plan.strategy != "canary")


def previous_good(ws: Workspace, env: str) -> str:
    """The release that was live before the current one and deployed successfully."""
    live = ws.store.get_live(env)
    current = live.release_id if live is not None else None
    if live is not None and live.previous_release_id not in (None, current):
        return str(live.previous_release_id)
    for rollout in ws.store.rollouts(env, limit=200):
        if rollout.status == "succeeded" and rollout.release_id != current:
            return rollout.release_id
    raise BadInput(
        f"{env} has no earlier release to roll back to",
        hint="name one: envplane rollback ENV --to RELEASE",
    )


def rollback(
    ws: Workspace,
    env: str,
    *,
    to: str | None = None,
    data: str = "ask",
    dry_run: bool = False,
) -> DeployResult:
    """Back to the previous good release (or `to`). A blue-green's old color still kept is a
    switch only. A paused canary is rolled back to its stable version."""
    _ready_environment(ws, env)
    active = ws.store.active_rollout(env)
    if active is not None and active.status == "paused":
        return _abort_paused(ws, env, active, dry_run=dry_run)
    target = to or previous_good(ws, env)
    last = next(iter(ws.store.rollouts(env, limit=1)), None)
    backup_id = (last.detail.get("backup_id") if last is not None else None) or None
    if backup_id and data == "ask":
        raise Blocked(
            f"{last.release_id if last else 'the live release'} ran a migration in {env}: "
            "choose what happens to the data",
            hint=f"envplane rollback {env} --with-data (restores backup {backup_id}; what was "
            "written since is lost) or --keep-data (the code only)",
        )
    live = ws.store.get_live(env)
    settings = matrix_for(ws, env).strategy_for(env)
    plan = plan_deploy(ws, env, target, kind="rollback")
    retained = dict(live.retained) if live is not None else {}
    switch_only = bool(plan.moves) and all(
        m.service in retained and retained[m.service].get("version") == m.to_version
        for m in plan.moves
    )
    if switch_only:
        moves = [
            m.model_copy(update={"to_color": str(retained[m.service]["color"])}) for m in plan.moves
        ]
        plan = plan.model_copy(update={"moves": moves, "strategy": "blue_green"})
    plan = plan.model_copy(update={"data": data, "backup_id": backup_id})
    result = DeployResult(plan)
    if dry_run or not plan.moves:
        if not plan.moves:
            result.status = "unchanged"
        return result
    if switch_only:
        return _switch_back(ws, plan, result, settings)
    if backup_id and data == "restore":
        _restore_before(ws, env, backup_id)
    return _run(ws, plan, result, settings)


def _switch_back(
    ws: Workspace, plan: DeployPlan, result: DeployResult, settings: DeploymentStrategy
) -> DeployResult:
    """Rollback within blue-green's scale-down delay: the old color still runs; route to it
    and stop the abandoned one."""
    env = plan.environment
    record = ws.store.get_environment(env)
    assert record is not None
    delivery = get_delivery(record.target or "local")
    started = time.monotonic()
    with locked_operation(ws.store, env, "rollback", plan.model_dump(), events=ws.events) as op_id:
        result.operation_id = op_id
        ws.store.start_rollout(
            op_id,
            env,
            plan.release_id,
            kind="rollback",
            strategy="switch",
            previous_release_id=plan.previous_release_id,
        )
        rollout = Rollout(ws, plan, op_id, delivery=delivery, strategy=settings)
        live = ws.store.get_live(env)
        ws.store.set_retained(env, {})
        rollout.settle(plan.moves, to_new=True)
        ws.store.set_retained(env, {})
        del live
        seconds = sum(rollout.routes)  # the switch itself; stopping the left color follows
        ws.store.update_rollout(
            op_id,
            status="succeeded",
            phase="done",
            detail={"switch_seconds": seconds},
            finished=True,
        )
        ws.store.audit(env, "rollback", f"to {plan.release_id} (a switch to the kept color)")
    result.status = "succeeded"
    result.seconds = time.monotonic() - started
    result.detail = {"switch_only": True, "switch_seconds": round(sum(rollout.routes), 3)}
    return result


def _abort_paused(ws: Workspace, env: str, active: RolloutRecord, *, dry_run: bool) -> DeployResult:
    op = ws.store.get_operation(active.id)
    assert op is not None
    plan = registry.read_plan(op)
    assert isinstance(plan, DeployPlan)
    plan = plan.model_copy(update={"rollout_id": active.id})
    result = DeployResult(plan)
    if dry_run:
        return result
    settings = matrix_for(ws, env).strategy_for(env)
    record = ws.store.get_environment(env)
    assert record is not None
    delivery = get_delivery(record.target or "local")
    with locked_operation(ws.store, env, "rollback", plan.model_dump(), events=ws.events) as op_id:
        result.operation_id = op_id
        rollout = Rollout(
            ws, plan, op_id, delivery=delivery, strategy=settings, rollout_id=active.id
        )
        rollout.settle(plan.moves, to_new=False)
        ws.store.update_rollout(active.id, status="rolled_back", phase="aborted", finished=True)
        ws.store.audit(env, "rollback", f"paused canary of {plan.release_id} rolled back")
    result.status = "rolled_back"
    return result


def _restore_before(ws: Workspace, env: str, backup_id: str) -> None:
    from envplane.data.restore import restore

    ws.progress(f"restoring the data {env} had before the migration (backup {backup_id})")
    restore(ws, env, backup_id, force=True)


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
