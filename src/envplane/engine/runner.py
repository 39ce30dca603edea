"""Run a plan's steps against a target driver, journaling each before and after it acts."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from envplane.errors import EnvplaneError, OperationFailed, TransientError
from envplane.plan.model import Plan, Step
from envplane.render.model import Resource
from envplane.targets.base import EnvContext, Target

if TYPE_CHECKING:
    from envplane.state.store import StateStore

RETRIES = 3
# Test hook for crash-safety tests: SIGKILL this process right after the Nth executed step.
FAULT_ENV = "ENVPLANE_FAULT_KILL_AFTER_STEP"


def run_steps(
    store: StateStore,
    target: Target,
    ctx: EnvContext,
    op_id: str,
    plan: Plan,
    resources: Mapping[str, Resource],
    *,
    first_index: int = 0,
) -> int:
    """Execute every non-noop step in order; returns how many ran. Raises OperationFailed."""
    kill_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    executed = 0
    index = first_index
    total = len(plan.changes)
    for step in plan.changes:
        resource = resources[step.key]
        ctx.progress(f"[{executed + 1}/{total}] {step.action} {step.key}")
        store.start_step(op_id, index, step.key, step.action)
        started = time.monotonic()
        try:
            _run_one(target, ctx, step, resource)
        except EnvplaneError as exc:
            store.finish_step(op_id, index, "failed", str(exc))
            raise OperationFailed(
                f"{step.action} {step.key} failed: {exc}", operation_id=op_id, hint=exc.hint
            ) from exc
        except Exception as exc:  # a driver bug or an unexpected system error: keep it journaled
            store.finish_step(op_id, index, "failed", f"{type(exc).__name__}: {exc}")
            raise OperationFailed(
                f"{step.action} {step.key} failed: {type(exc).__name__}: {exc}", operation_id=op_id
            ) from exc
        if step.action == "delete":
            store.forget_resource(plan.environment, step.key)
        else:
            store.record_resource(
                plan.environment, step.key, resource.kind, resource.digest, dict(resource.spec)
            )
        store.finish_step(op_id, index, "done", f"{time.monotonic() - started:.2f}s")
        executed += 1
        index += 1
        if kill_after and executed == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
    return executed


def _run_one(target: Target, ctx: EnvContext, step: Step, resource: Resource) -> None:
    for attempt in range(1, RETRIES + 1):
        try:
            if step.action == "delete":
                target.delete(ctx, resource)
            elif step.action in ("create", "update"):
                target.apply(ctx, step.action, resource)
            return
        except TransientError:
            if attempt == RETRIES:
                raise
            time.sleep(0.2 * attempt)
