"""create, update, resume: converge an environment on its desired state, step by journaled step."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from envplane.engine.operation import locked_operation
from envplane.engine.runner import run_steps
from envplane.errors import BadInput, EnvplaneError, OperationFailed
from envplane.lifecycle.common import (
    Rendered,
    ensure_secrets,
    matrix_for,
    project_of,
    recorded_resources,
    render,
)
from envplane.names import check_env_name, check_ident
from envplane.plan.diff import compute_plan
from envplane.plan.model import Plan
from envplane.targets.registry import TARGETS
from envplane.workspace import Workspace

ACTIVE = ("creating", "ready", "updating", "failed", "destroying")
DATA_KINDS = ("restore", "clone", "sync")


@dataclass
class Outcome:
    environment: str
    plan: Plan
    operation_id: str | None = None
    applied: bool = False
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise BadInput(f"unknown target {target!r}; choose one of: {', '.join(TARGETS)}")


def plan_environment(
    ws: Workspace, env: str, *, target: str | None = None, template: str | None = None
) -> Plan:
    """What `create` (new environment) or `update` (existing one) would do. Changes nothing."""
    check_env_name(env)
    matrix_for(ws, env).environment(env)
    record = ws.store.get_environment(env)
    exists = record is not None and record.status != "destroyed"
    target = target or (record.target if exists and record else None) or "local"
    _check_target(target)
    if not exists or record is None or record.target != target:
        # A new environment, or one that runs elsewhere: what creating it here would do.
        # Nothing is observed, so a cloud plan works offline.
        rendered = render(ws, env, target=target, template=template, ports={})
        return compute_plan(rendered.desired, {}, operation="create", new_ports=rendered.new_ports)
    return _update_plan(ws, env, record.ports or {}, template or record.template, target)[0]


def _update_plan(
    ws: Workspace, env: str, ports: dict[str, int], template: str | None, target_name: str
) -> tuple[Plan, Rendered]:
    rendered = render(ws, env, target=target_name, template=template, ports=ports)
    target = ws.target(target_name)
    ctx = ws.context(env, rendered.ports, rendered.desired.project)
    plan = compute_plan(
        rendered.desired,
        ws.store.resources(env),
        operation="update",
        observe=lambda res: target.observe(ctx, res),
        new_ports=rendered.new_ports,
    )
    return plan, rendered


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
) -> Outcome:
    """`definition` ({"extends": SRC, "overrides": {...}}) creates an environment the matrix
    does not name, derived from one it does (a clone); it is recorded for later operations.
    `seeds` (EnvContext.seeds) create data resources from copies instead of empty."""
    check_env_name(env)
    _check_target(target)
    if template is not None:
        check_ident(template, what="template name")
    matrix = matrix_for(ws, env, definition)
    matrix.environment(env)
    _refuse_existing(ws, env)
    rendered = render(ws, env, target=target, template=template, ports={}, matrix=matrix)
    plan = compute_plan(rendered.desired, {}, operation="create", new_ports=rendered.new_ports)
    outcome = Outcome(env, plan)
    if show_plan:
        show_plan(plan)
    if dry_run:
        return outcome
    ws.target(target).preflight(rendered.desired)  # a missing program: nothing recorded
    started = time.monotonic()
    store = ws.store
    with locked_operation(store, env, "create", plan.to_json()) as op_id:
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
) -> Outcome:
    """`template` switches the environment to another config template (kept from then on)."""
    check_env_name(env)
    if template is not None:
        check_ident(template, what="template name")
    matrix_for(ws, env).environment(env)
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(
            f"environment {env!r} does not exist", hint=f"create it: envplane create {env}"
        )
    plan, rendered = _update_plan(
        ws, env, record.ports or {}, template or record.template, record.target or "local"
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
    with locked_operation(ws.store, env, "update", plan.to_json()) as op_id:
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


def resume(ws: Workspace, op_id: str) -> Outcome:
    """Finish an interrupted or failed operation from where the world is now."""
    op = ws.store.get_operation(op_id)
    if op is None:
        raise BadInput(f"no operation {op_id!r}", hint="`envplane history` lists operations")
    env = op.env
    record = ws.store.get_environment(env)
    if op.status == "succeeded" or record is None:
        empty = Plan(env, record.target if record else "local", op.kind, ())
        return Outcome(
            env, empty, op_id, messages=[f"operation {op_id} already finished ({op.status})"]
        )
    if op.kind == "destroy":
        from envplane.lifecycle.destroy import destroy

        return destroy(ws, env, force=True, resume_id=op_id)
    if op.kind in DATA_KINDS:
        # Data operations (restore, clone, sync) live above the lifecycle; imported on demand.
        from envplane.data.resume import resume_data

        return resume_data(ws, op_id)
    if op.kind not in ("create", "update"):
        raise BadInput(f"operation {op_id} ({op.kind}) cannot be resumed")
    started = time.monotonic()
    with locked_operation(ws.store, env, op.kind, op.plan, resume_id=op_id):
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
    messages = []
    pending = (record.definition or {}).get("pending_data")
    if op.kind == "create" and pending:
        # A clone --with-data interrupted while creating: its data copy comes next.
        from envplane.data.resume import finish_pending_clone

        messages.append(finish_pending_clone(ws, env))
    return Outcome(
        env, plan, op_id, applied=True, seconds=time.monotonic() - started, messages=messages
    )


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
        run_steps(store, target, ctx, op_id, plan, resources, first_index=first_index)
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
