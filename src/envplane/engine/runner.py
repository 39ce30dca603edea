"""Run a plan's steps against a target driver, journaling each before and after it acts.

Creates and updates run as soon as the steps they depend on are done, a few at a time
(PostgreSQL's start overlaps Redis's, nginx's overlaps Prometheus's); deletes run one by one
in reverse dependency order. Journal writes are serialised: the store is not shared between
threads, and a journal line is never half-written.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from envplane.errors import EnvplaneError, OperationFailed, TransientError
from envplane.plan.model import Plan, Step
from envplane.render.model import Resource
from envplane.targets.base import EnvContext, Target

if TYPE_CHECKING:
    from envplane.state.store import StateStore

RETRIES = 3
# Test hook for crash-safety tests: SIGKILL this process right after the Nth finished step.
FAULT_ENV = "ENVPLANE_FAULT_KILL_AFTER_STEP"
MAX_PARALLEL = 4


class _Journal:
    """The store behind one lock, plus the count the fault hook watches."""

    def __init__(self, store: StateStore, op_id: str, env: str) -> None:
        self.store, self.op_id, self.env = store, op_id, env
        self.lock = threading.Lock()
        self.finished = 0
        self.kill_after = int(os.environ.get(FAULT_ENV, "0") or 0)

    def started(self, index: int, step: Step) -> None:
        with self.lock:
            self.store.start_step(self.op_id, index, step.key, step.action)

    def failed(self, index: int, detail: str) -> None:
        with self.lock:
            self.store.finish_step(self.op_id, index, "failed", detail)

    def done(self, index: int, step: Step, resource: Resource, seconds: float) -> None:
        with self.lock:
            if step.action == "delete":
                self.store.forget_resource(self.env, step.key)
            else:
                spec = dict(resource.spec)
                self.store.record_resource(self.env, step.key, resource.kind, resource.digest, spec)
            self.store.finish_step(self.op_id, index, "done", f"{seconds:.2f}s")
            self.finished += 1
            if self.kill_after and self.finished == self.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # still holding the lock: nothing else lands


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
    """Execute every non-noop step; returns how many ran. Raises OperationFailed."""
    steps = list(plan.changes)
    journal = _Journal(store, op_id, plan.environment)
    total = len(steps)
    counter = iter(range(1, total + 1))

    def run(index: int, step: Step) -> None:
        resource = resources[step.key]
        ctx.progress(f"[{next(counter)}/{total}] {step.action} {step.key}")
        journal.started(index, step)
        started = time.monotonic()
        try:
            _run_one(target, ctx, step, resource)
        except EnvplaneError as exc:
            journal.failed(index, str(exc))
            raise OperationFailed(
                f"{step.action} {step.key} failed: {exc}", operation_id=op_id, hint=exc.hint
            ) from exc
        except Exception as exc:  # a driver bug or an unexpected system error: keep it journaled
            journal.failed(index, f"{type(exc).__name__}: {exc}")
            raise OperationFailed(
                f"{step.action} {step.key} failed: {type(exc).__name__}: {exc}",
                operation_id=op_id,
            ) from exc
        journal.done(index, step, resource, time.monotonic() - started)

    indexed = list(enumerate(steps, start=first_index))
    if any(step.action == "delete" for step in steps):
        for index, step in indexed:
            run(index, step)
        return total
    _run_graph(indexed, resources, run)
    return total


def _run_graph(
    indexed: list[tuple[int, Step]],
    resources: Mapping[str, Resource],
    run: Callable[[int, Step], None],
) -> None:
    """Start each step once none of its dependencies is still pending or running."""
    pending = {step.key: (index, step) for index, step in indexed}
    first_error: BaseException | None = None
    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="envplane-step") as pool:
        while pending or running:
            if first_error is None:
                for key, (index, step) in list(pending.items()):
                    busy = set(pending) | set(running.values())
                    if not any(dep in busy for dep in resources[key].depends_on):
                        running[pool.submit(run, index, step)] = key
                        del pending[key]
            if not running:
                break
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                running.pop(future)
                error = future.exception()
                if error is not None and first_error is None:
                    first_error = error  # let the others finish; start nothing new
    if first_error is not None:
        raise first_error


def _run_one(target: Target, ctx: EnvContext, step: Step, resource: Resource) -> None:
    for attempt in range(1, RETRIES + 1):
        try:
            if step.action == "delete":
                target.delete(ctx, resource)
            elif step.action == "create":
                target.apply(ctx, "create", resource)
            elif step.action == "update":
                target.apply(ctx, "update", resource)
            return
        except TransientError:
            if attempt == RETRIES:
                raise
            time.sleep(0.2 * attempt)
