"""The one step runner: every operation kind's steps are journaled, run and reported here.

A step is a unit of work on one key (a resource, or a phase of a data operation such as
"data/stop-services") with the action it performs. Each is journaled before and after it
runs; a step starts once the steps it comes after are done, a few at a time (PostgreSQL's
start overlaps Redis's; a restore's components unpack side by side); a failure lets the
running ones finish, starts nothing new, and is raised as OperationFailed. Journal writes are
serialised: the store is not shared between threads, and a journal line is never half-written.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from envplane.engine import faults
from envplane.errors import EnvplaneError, OperationFailed, TransientError
from envplane.events import EventSink, StepFinished, StepStarted, discard

if TYPE_CHECKING:
    from envplane.state.records import StepAction
    from envplane.state.store import StateStore

RETRIES = 3
MAX_PARALLEL = 4


@dataclass(frozen=True)
class Step:
    key: str  # "postgres/postgres", "data/mask"
    action: StepAction
    work: Callable[[], None]
    after: tuple[str, ...] = ()  # keys of steps that must be done before this one starts
    # Called under the journal's lock once the step succeeded, before it is marked done:
    # what the store must know about its result (a recorded resource) lands with it.
    record: Callable[[StateStore], None] | None = None


def in_stages(stages: Sequence[Sequence[Step]]) -> list[Step]:
    """Steps of one stage run side by side; each stage waits for the one before it."""
    out: list[Step] = []
    previous: tuple[str, ...] = ()
    for stage in stages:
        out += [replace(step, after=(*step.after, *previous)) for step in stage]
        previous = tuple(step.key for step in stage)
    return out


def in_sequence(steps: Sequence[Step]) -> list[Step]:
    """Each step waits for the one before it (deletes: reverse dependency order)."""
    return [
        replace(step, after=(*step.after, steps[i - 1].key)) if i else step
        for i, step in enumerate(steps)
    ]


def run(
    store: StateStore,
    op_id: str,
    steps: Sequence[Step],
    *,
    first_index: int = 0,
    skip: frozenset[int] = frozenset(),
    events: EventSink = discard,
) -> int:
    """Run every step whose journal index (first_index + position) is not in `skip`;
    returns how many ran. Raises OperationFailed naming the step that failed."""
    indexed = [(first_index + i, s) for i, s in enumerate(steps) if first_index + i not in skip]
    journal = threading.Lock()
    total = len(indexed)
    positions = iter(range(1, total + 1))

    def one(index: int, step: Step) -> None:
        with journal:
            position = next(positions)
            store.start_step(op_id, index, step.key, step.action)
        events(StepStarted(op_id, index, position, total, step.key, step.action))
        started = time.monotonic()
        try:
            _with_retries(step.work)
        except Exception as exc:
            known = isinstance(exc, EnvplaneError)
            detail = str(exc) if known else f"{type(exc).__name__}: {exc}"
            with journal:
                store.finish_step(op_id, index, "failed", detail)
            events(StepFinished(op_id, index, step.key, step.action, "failed", 0.0, detail))
            hint = exc.hint if isinstance(exc, EnvplaneError) else None
            raise OperationFailed(
                f"{step.action} {step.key} failed: {detail}", operation_id=op_id, hint=hint
            ) from exc
        seconds = time.monotonic() - started
        with journal:
            if step.record is not None:
                step.record(store)
            store.finish_step(op_id, index, "done", f"{seconds:.2f}s")
            faults.step_finished()  # still holding the lock: nothing else lands
        events(StepFinished(op_id, index, step.key, step.action, "done", seconds))

    _run_graph(indexed, one)
    return total


def _with_retries(work: Callable[[], None]) -> None:
    for attempt in range(1, RETRIES + 1):
        try:
            work()
            return
        except TransientError:
            if attempt == RETRIES:
                raise
            time.sleep(0.2 * attempt)


def _run_graph(indexed: list[tuple[int, Step]], run: Callable[[int, Step], None]) -> None:
    """Start each step once none of the steps it comes after is still pending or running."""
    pending = {step.key: (index, step) for index, step in indexed}
    if len(pending) != len(indexed):
        raise ValueError("two steps of one operation share a key")
    if len(indexed) == 1:  # the common short case: no thread needed
        run(*indexed[0])
        return
    first_error: BaseException | None = None
    running: dict[Future[None], str] = {}
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="envplane-step") as pool:
        while pending or running:
            if first_error is None:
                for key, (index, step) in list(pending.items()):
                    busy = set(pending) | set(running.values())
                    if not any(dep in busy for dep in step.after):
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


def done_steps(store: StateStore, op_id: str) -> frozenset[int]:
    """The steps of an operation that finished: a resume skips them."""
    op = store.get_operation(op_id)
    return frozenset(step.index for step in (op.steps if op else ()) if step.status == "done")
