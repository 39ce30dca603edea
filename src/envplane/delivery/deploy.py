"""deploy: a release into an environment, by its strategy, as a journaled operation (the
planning is in planning.py, the running in execute.py, rollback in rollback.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envplane.desired import matrix_for, running_services
from envplane.errors import Blocked
from envplane.matrix import policies

if TYPE_CHECKING:
    from envplane.state.records import ReleaseRecord
    from envplane.workspace import Workspace

from envplane.delivery.execute import continue_canary, run_plan
from envplane.delivery.planning import (
    DeployResult,
    plan_deploy,
    ready_environment,
    refuse_in_flight,
)
from envplane.delivery.written import rows_changed

__all__ = ["DeployResult", "continue_canary", "deploy", "plan_deploy", "ready_environment"]


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
    if kind == "deploy":  # a rollback is never refused: it is how a bad release leaves
        policies.refuse(matrix_for(ws, env), [env])
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
        taken, rows = _backup_before_migration(ws, env)
        plan = plan.model_copy(update={"backup_id": taken, "rows_at_backup": rows})
        result.plan = plan
    return run_plan(ws, plan, result, settings)


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


def _backup_before_migration(
    ws: Workspace, env: str
) -> tuple[str | None, dict[str, dict[str, int]]]:
    """The fast (physical) backup of the data a migration is about to change, taken just
    before the deploy, and the write counters at that moment; (None, {}) when the
    environment holds no data."""
    from envplane.data.backup import backup
    from envplane.data.envs import existing

    if not existing(ws, env).data_resources:
        return None, {}
    rows = rows_changed(ws, env)
    done = backup(ws, env, "data")
    assert done.manifest is not None
    ws.progress(f"backup {done.manifest.backup_id} taken before the migration")
    return done.manifest.backup_id, rows
