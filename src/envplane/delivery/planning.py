"""What a deploy would move: the environment checked, the strategy chosen, each service's
move from its version and color to the release's, in dependency order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envplane.delivery.cloud_checks import refuse_plan
from envplane.delivery.documents import DeployPlan, ServiceMove
from envplane.delivery.releases import check_version, get_release
from envplane.desired import matrix_for, running_services
from envplane.errors import BadInput, Blocked
from envplane.names import check_env_name
from envplane.render.cloud.tracks import INGRESS_CLASS_VARIABLE
from envplane.render.local import migration_of
from envplane.render.model import other_color
from envplane.targets.registry import rollout_model

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.matrix.models import DeploymentStrategy
    from envplane.workspace import Workspace


@dataclass
class DeployResult:
    plan: DeployPlan
    operation_id: str | None = None
    status: str = "planned"  # planned | succeeded | paused | unchanged | rolled_back
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)


def ready_environment(ws: Workspace, env: str) -> None:
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
    rollout_model(record.target or "local")  # bad input where releases cannot go yet


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
    ready_environment(ws, env)
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
                # A rollback runs no migration: its data is restored or kept, as asked.
                migrate=kind != "rollback" and bool(migration_of(services[name], version)),
            )
        )
    plan = DeployPlan(
        environment=env,
        kind="rollback" if kind == "rollback" else "deploy",
        release_id=release.id,
        previous_release_id=live.release_id if live is not None else None,
        strategy=chosen,
        moves=moves,
    )
    record = ws.store.get_environment(env)
    if record is not None and rollout_model(record.target or "local") == "kubernetes":
        # What the cloud cannot do is bad input before anything is recorded (and in --dry-run).
        ingress = bool(matrix.variables_for(env).get(INGRESS_CLASS_VARIABLE))
        refuse_plan(plan, settings, primary=settings.primary, ingress=ingress)
    return plan


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
    if op is not None and op.status == "running" and op.id in ws.store.lock_operations(env):
        return  # it still runs: taking the lock refuses, naming it
    # Its process is gone (killed) or it ended unsettled: another rollout over it could
    # leave two colors half-switched. Only its own resume settles it.
    raise Blocked(
        f"the rollout {active.id} of {active.release_id} in {env} did not finish",
        hint=f"finish it: envplane resume {active.id}",
    )
