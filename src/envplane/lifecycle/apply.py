"""create, update, resume: converge an environment on its desired state, step by journaled step."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from envplane.desired import (
    ensure_secrets,
    matrix_for,
    project_of,
    recorded_resources,
    render,
)
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.engine.runner import run_steps
from envplane.errors import BadInput, EnvplaneError, OperationFailed
from envplane.lifecycle.costs import with_cost
from envplane.lifecycle.documents import ResourcePlan
from envplane.matrix import policies
from envplane.names import check_env_name, check_ident
from envplane.plan.causes import with_causes
from envplane.plan.diff import compute_plan
from envplane.plan.model import Plan
from envplane.targets.base import refuse_problems
from envplane.targets.registry import Rendered
from envplane.targets.registry import spec as target_spec
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord

ACTIVE = ("creating", "ready", "updating", "failed", "destroying")


def _check_target(target: str) -> None:
    target_spec(target)  # UnknownTarget when there is no such target


def plan_environment(
    ws: Workspace, env: str, *, target: str | None = None, template: str | None = None
) -> Plan:
    """What `create` (new environment) or `update` (existing one) would do. Changes nothing."""
    return planned(ws, env, target=target, template=template)[0]


def planned(
    ws: Workspace,
    env: str,
    *,
    target: str | None = None,
    template: str | None = None,
    ports: Mapping[str, int] | None = None,
) -> tuple[Plan, dict[str, Any]]:
    """The plan, and the request that reproduces it (`apply` of a saved plan): the target,
    the template, and for a create the ports it allocated (`ports` re-uses them)."""
    check_env_name(env)
    if template is not None:
        check_ident(template, what="template name")
    matrix_for(ws, env).environment(env)
    record = ws.store.get_environment(env)
    exists = record is not None and record.status != "destroyed"
    target = target or (record.target if exists and record else None) or "local"
    _check_target(target)
    request: dict[str, Any] = {"target": target, "template": template}
    if not exists or record is None or record.target != target:
        # A new environment, or one that runs elsewhere: what creating it here would do.
        # Nothing is observed, so a cloud plan works offline.
        rendered = render(ws, env, target=target, template=template, ports=dict(ports or {}))
        refuse_problems(ws.target(target), matrix_for(ws, env), rendered.desired, ws.env_dir(env))
        plan = compute_plan(rendered.desired, {}, operation="create", new_ports=rendered.new_ports)
        plan = with_causes(with_cost(ws, env, plan), matrix_for(ws, env), env)
        request["ports"] = rendered.ports
        return plan, request
    ports = {**(record.ports or {}), **(ports or {})}
    plan, rendered = _update_plan(ws, env, ports, template or record.template, target)
    request["ports"] = rendered.ports  # ports a replica added allocates
    return plan, request


def _update_plan(
    ws: Workspace, env: str, ports: dict[str, int], template: str | None, target_name: str
) -> tuple[Plan, Rendered]:
    rendered = render(ws, env, target=target_name, template=template, ports=ports)
    target = ws.target(target_name)
    refuse_problems(target, matrix_for(ws, env), rendered.desired, ws.env_dir(env))
    ctx = ws.context(env, rendered.ports, rendered.desired.project)
    plan = compute_plan(
        rendered.desired,
        ws.store.resources(env),
        operation="update",
        observe=lambda res: target.observe(ctx, res),
        new_ports=rendered.new_ports,
        kind_order=target_spec(target_name).kinds,
    )
    return with_causes(with_cost(ws, env, plan), matrix_for(ws, env), env), rendered


def create(
    ws: Workspace,
    env: str,
    *,
    template: str | None = None,
    target: str = "local",
    dry_run: bool = False,
    show_plan: Callable[[Plan], None] | None = None,
    definition: Mapping[str, Any] | None = None,
    seeds: Mapping[str, Callable[[], Any]] | None = None,
    ports: Mapping[str, int] | None = None,
    op_id: str | None = None,
) -> Outcome:
    """`ports` are used instead of allocating new ones (a saved plan's); `op_id` is the id
    chosen in advance for the operation (a clone reads its source under it).
    `definition` ({"extends": SRC, "overrides": {...}}) creates an environment the matrix
    does not name, derived from one it does (a clone); it is recorded for later operations.
    `seeds` (EnvContext.seeds) create data resources from copies instead of empty."""
    check_env_name(env)
    _check_target(target)
    if template is not None:
        check_ident(template, what="template name")
    matrix = matrix_for(ws, env, definition)
    matrix.environment(env)
    policies.refuse(matrix, [env])  # before anything is recorded, locked or started
    _refuse_existing(ws, env)
    rendered = render(
        ws, env, target=target, template=template, ports=dict(ports or {}), matrix=matrix
    )
    refuse_problems(ws.target(target), matrix, rendered.desired, ws.env_dir(env))
    plan = compute_plan(rendered.desired, {}, operation="create", new_ports=rendered.new_ports)
    plan = with_cost(ws, env, plan, matrix)
    outcome = Outcome(env, plan)
    if show_plan:
        show_plan(plan)
    if dry_run:
        return outcome
    ws.target(target).preflight(rendered.desired)  # a missing program: nothing recorded
    started = time.monotonic()
    store = ws.store
    with locked_operation(
        store, env, "create", plan.to_json(), op_id=op_id, events=ws.events
    ) as op_id:
        _refuse_existing(ws, env)  # checked again under the lock: a racing create lost
        outcome.operation_id = op_id
        store.save_environment(
            env,
            target=target,
            status="creating",
            template=template,
            ports=rendered.ports,
            last_operation_id=op_id,
            definition=dict(definition) if definition else None,
        )
        _converge(ws, env, op_id, plan, rendered, first_index=0, seeds=seeds)
    outcome.applied = True
    outcome.seconds = time.monotonic() - started
    return outcome


def update(
    ws: Workspace,
    env: str,
    *,
    dry_run: bool = False,
    show_plan: Callable[[Plan], None] | None = None,
    template: str | None = None,
    ports: Mapping[str, int] | None = None,
) -> Outcome:
    """`template` switches the environment to another config template (kept from then on);
    `ports` are used instead of allocating new ones (a saved plan's)."""
    check_env_name(env)
    if template is not None:
        check_ident(template, what="template name")
    matrix_for(ws, env).environment(env)
    policies.refuse(matrix_for(ws, env), [env])  # before anything is recorded or locked
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(
            f"environment {env!r} does not exist", hint=f"create it: envplane create {env}"
        )
    plan, rendered = _update_plan(
        ws,
        env,
        {**(record.ports or {}), **(ports or {})},
        template or record.template,
        record.target or "local",
    )
    outcome = Outcome(env, plan)
    if show_plan:
        show_plan(plan)
    if dry_run or not plan.changes:
        if not dry_run and template and template != record.template:
            ws.store.save_environment(env, template=template)  # same output, kept for later
        return outcome
    ws.target(rendered.desired.target).preflight(rendered.desired)
    started = time.monotonic()
    with locked_operation(ws.store, env, "update", plan.to_json(), events=ws.events) as op_id:
        outcome.operation_id = op_id
        ws.store.save_environment(
            env,
            status="updating",
            ports=rendered.ports,
            last_operation_id=op_id,
            template=template,
        )
        _converge(ws, env, op_id, plan, rendered, first_index=0)
    outcome.applied = True
    outcome.seconds = time.monotonic() - started
    return outcome


def resume_converge(ws: Workspace, op: OperationRecord, _plan: ResourcePlan) -> Outcome:
    """Resume a create or update: plan again against the world as it is now and converge,
    under the same operation id (every step is idempotent; the journal is not replayed)."""
    env, op_id = op.env, op.id
    record = ws.store.get_environment(env)
    assert record is not None  # the registry's resume checked it
    started = time.monotonic()
    with locked_operation(ws.store, env, op.kind, op.plan, resume_id=op_id, events=ws.events):
        plan, rendered = _update_plan(
            ws, env, record.ports or {}, record.template, record.target or "local"
        )
        ws.store.save_environment(
            env,
            status="creating" if op.kind == "create" else "updating",
            ports=rendered.ports,
            last_operation_id=op_id,
        )
        _converge(ws, env, op_id, plan, rendered, first_index=len(op.steps))
    return Outcome(env, plan, op_id, applied=True, seconds=time.monotonic() - started)


for _kind, _summary in (
    ("create", "create an environment from the matrix"),
    ("update", "apply what changed since the environment was last applied"),
):
    registry.register(registry.OperationKind(_kind, ResourcePlan, resume_converge, _summary))


def _converge(
    ws: Workspace,
    env: str,
    op_id: str,
    plan: Plan,
    rendered: Rendered,
    *,
    first_index: int,
    seeds: Mapping[str, Callable[[], Any]] | None = None,
) -> None:
    store = ws.store
    target = ws.target(rendered.desired.target)
    ctx = replace(ws.context(env, rendered.ports, project_of(ws)), seeds=dict(seeds or {}))
    resources = {r.key: r for r in rendered.desired.resources}
    resources.update({k: r for k, r in recorded_resources(ws, env).items() if k not in resources})
    try:
        ensure_secrets(ws, env, rendered.desired.secrets)
        run_steps(
            store, target, ctx, op_id, plan, resources, first_index=first_index, events=ws.events
        )
    except BaseException as exc:
        store.save_environment(env, status="failed")
        if isinstance(exc, EnvplaneError) and not isinstance(exc, OperationFailed):
            raise OperationFailed(str(exc), operation_id=op_id, hint=exc.hint) from exc
        raise
    store.save_environment(env, status="ready", ports=rendered.ports)


def _refuse_existing(ws: Workspace, env: str) -> None:
    record = ws.store.get_environment(env)
    if record is None or record.status not in ACTIVE:
        return
    if record.status != "ready" and record.last_operation_id:
        raise BadInput(
            f"environment {env!r} exists and its last operation did not finish ({record.status})",
            hint=(
                f"finish it with `envplane resume {record.last_operation_id}` "
                f"or `envplane destroy {env}`"
            ),
        )
    raise BadInput(
        f"environment {env!r} already exists ({record.status})", hint=f"use `envplane update {env}`"
    )
