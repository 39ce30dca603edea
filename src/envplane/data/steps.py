"""Journaled steps of a data operation, and the fault hook the crash tests use.

Steps come in stages: the steps of one stage are independent (e.g. PostgreSQL, Redis and the
objects of a restore) and run at the same time; stages run one after the other. Each step is
journaled before and after it runs, like the engine's, and a resume runs every step not done.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from envplane.errors import EnvplaneError, OperationFailed
from envplane.state.store import StateStore

# Test hook: SIGKILL this process right after the Nth step (or backup component) finished.
FAULT_ENV = "ENVPLANE_FAULT_KILL_AFTER_DATA_STEP"

Step = tuple[str, Callable[[], None]]
Stage = Sequence[Step]


def fault_point(done: int) -> None:
    kill_after = int(os.environ.get(FAULT_ENV, "0") or 0)
    if kill_after and done == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)


def step_names(stages: Sequence[Stage]) -> list[str]:
    return [key for stage in stages for key, _work in stage]


def run(
    store: StateStore,
    op_id: str,
    stages: Sequence[Stage],
    *,
    skip: frozenset[int] = frozenset(),
    progress: Callable[[str], None] = lambda _m: None,
) -> None:
    """Run every step whose index is not in `skip`, stage by stage."""
    journal = threading.Lock()  # one writer at a time: SQLite, and a readable journal
    total = len(step_names(stages))
    finished = [len(skip)]

    def one(index: int, key: str, work: Callable[[], None]) -> None:
        progress(f"[{index + 1}/{total}] {key}")
        with journal:
            store.start_step(op_id, index, key, "update")
        started = time.monotonic()
        try:
            work()
        except EnvplaneError as exc:
            with journal:
                store.finish_step(op_id, index, "failed", str(exc))
            raise OperationFailed(f"{key} failed: {exc}", operation_id=op_id) from exc
        except Exception as exc:
            with journal:
                store.finish_step(op_id, index, "failed", f"{type(exc).__name__}: {exc}")
            raise OperationFailed(
                f"{key} failed: {type(exc).__name__}: {exc}", operation_id=op_id
            ) from exc
        with journal:
            store.finish_step(op_id, index, "done", f"{time.monotonic() - started:.2f}s")
            finished[0] += 1
            fault_point(finished[0])

    index = 0
    for stage in stages:
        todo = []
        for key, work in stage:
            if index not in skip:
                todo.append((index, key, work))
            index += 1
        if len(todo) == 1:
            one(*todo[0])
        elif todo:
            with ThreadPoolExecutor(max_workers=len(todo)) as pool:
                futures = [pool.submit(one, *item) for item in todo]
            errors = [f.exception() for f in futures if f.exception() is not None]
            if errors:
                raise errors[0]  # type: ignore[misc]


def done_steps(store: StateStore, op_id: str) -> frozenset[int]:
    """The steps of an operation that finished: a resume skips them."""
    op = store.get_operation(op_id)
    return frozenset(step.index for step in (op.steps if op else ()) if step.status == "done")
