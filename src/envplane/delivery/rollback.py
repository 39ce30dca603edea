"""rollback: back to the previous good release (a switch only while blue-green keeps the
old color), or a paused canary back to its stable version."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from envplane.delivery.documents import DeployPlan
from envplane.delivery.rollouts import new_rollout
from envplane.delivery.written import written_since
from envplane.desired import matrix_for
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.errors import BadInput, Blocked

if TYPE_CHECKING:
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.records import RolloutRecord
    from envplane.workspace import Workspace

from envplane.delivery.execute import run_plan
from envplane.delivery.planning import (
    DeployResult,
    plan_deploy,
    ready_environment,
    refuse_in_flight,
)


def previous_good(ws: Workspace, env: str) -> str:
    """The newest release before the current one that went live successfully — never one a
    rollback left, unless it was deployed again since (so a second `rollback` goes further
    back, not forth to the release the first one undid)."""
    live = ws.store.get_live(env)
    current = live.release_id if live is not None else None
    history = ws.store.rollouts(env, limit=200)  # newest first
    walk: list[tuple[str, RolloutRecord | None]] = [
        (r.release_id, r) for r in history if r.status == "succeeded"
    ]
    if history and history[-1].previous_release_id is not None:
        walk.append((history[-1].previous_release_id, None))  # what ran before the first
    elif live is not None and live.previous_release_id is not None:
        walk.append((live.previous_release_id, None))
    left: set[str] = set()
    for release, rollout in walk:
        if release != current and release not in left:
            return release
        if rollout is not None and rollout.kind == "rollback" and rollout.previous_release_id:
            left.add(rollout.previous_release_id)
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
    ready_environment(ws, env)
    active = ws.store.active_rollout(env)
    if active is not None and active.status == "paused":
        return _abort_paused(ws, env, active, dry_run=dry_run)
    refuse_in_flight(ws, env)
    target = to or previous_good(ws, env)
    live = ws.store.get_live(env)
    # The data question belongs to the release that is live: the rollout that made it so
    # migrated (and backed up first), or it did not.
    made_live = ws.store.get_rollout(live.rollout_id) if live and live.rollout_id else None
    backup_id = (made_live.detail.get("backup_id") if made_live is not None else None) or None
    if backup_id and made_live is not None and not made_live.detail.get("migrated"):
        backup_id = None  # backed up, but the migration never ran: the data did not move
    if backup_id and data == "ask":
        raise Blocked(
            f"{live.release_id if live else 'the live release'} ran a migration in {env}: "
            "choose what happens to the data",
            hint=f"envplane rollback {env} --with-data (restores backup {backup_id}; what was "
            "written since is lost) or --keep-data (the code only)",
        )
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
    if backup_id and data == "restore":
        # The data first, then the code that reads it (a switch, or a rollout).
        result.messages += _restore_before(ws, env, backup_id, made_live)
    if switch_only:
        return _switch_back(ws, plan, result, settings)
    return run_plan(ws, plan, result, settings)


def _switch_back(
    ws: Workspace, plan: DeployPlan, result: DeployResult, settings: DeploymentStrategy
) -> DeployResult:
    """Rollback within blue-green's scale-down delay: the old color still runs; route to it
    and stop the abandoned one."""
    env = plan.environment
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
        rollout = new_rollout(ws, plan, op_id, strategy=settings)
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
    with locked_operation(ws.store, env, "rollback", plan.model_dump(), events=ws.events) as op_id:
        result.operation_id = op_id
        rollout = new_rollout(ws, plan, op_id, strategy=settings, rollout_id=active.id)
        rollout.settle(plan.moves, to_new=False)
        ws.store.update_rollout(active.id, status="rolled_back", phase="aborted", finished=True)
        ws.store.audit(env, "rollback", f"paused canary of {plan.release_id} rolled back")
    result.status = "rolled_back"
    return result


def _restore_before(
    ws: Workspace, env: str, backup_id: str, made_live: RolloutRecord | None
) -> list[str]:
    """Restore the backup the migrating deploy took; what it says was written since (and is
    now lost), from the write counters recorded with the backup."""
    from envplane.data.restore import restore

    lost = written_since(ws, env, made_live.detail if made_live is not None else {})
    ws.progress(f"restoring the data {env} had before the migration (backup {backup_id})")
    for line in lost:
        ws.progress(line)
    restore(ws, env, backup_id, force=True)
    return [f"data restored from backup {backup_id}", *lost]
