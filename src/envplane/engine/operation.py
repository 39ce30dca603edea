"""An operation's frame: journal record, environment lock, and its outcome, crash-safe."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from envplane.errors import LockHeld
from envplane.events import EventSink, OperationFinished, OperationStarted, discard

if TYPE_CHECKING:
    from envplane.state.store import StateStore


@contextmanager
def locked_operation(
    store: StateStore,
    env: str,
    kind: str,
    plan: Any,
    *,
    resume_id: str | None = None,
    events: EventSink = discard,
) -> Iterator[str]:
    """Record the operation, hold the environment's lock while it runs, record how it ended.

    The journal line comes first so that a process killed at any point leaves an operation
    that `envplane resume` can find; the lock names that operation, so a dead holder is visible.
    A resume takes the operation over once it holds the lock: the row says running again, with
    this process's pid, and the audit trail says who resumed it.
    """
    op_id = resume_id or store.start_operation(env, kind, plan).id
    try:
        store.acquire_lock(env, op_id)
    except LockHeld as exc:
        if resume_id is None:
            store.finish_operation(op_id, "failed", error=f"blocked: {exc.message}")
        raise
    try:
        if resume_id is not None:
            store.resume_operation(op_id)
            store.audit(env, "resumed", f"operation {op_id} ({kind}) resumed")
        for other in store.operations(env, limit=20):
            if other.status == "running" and other.id != op_id:
                # Its process died holding the (now taken over) lock; say so in the journal.
                store.finish_operation(
                    other.id, "failed", error=f"interrupted; superseded by {op_id}"
                )
    except BaseException:
        store.release_lock(env, op_id)
        raise
    events(OperationStarted(op_id, kind, env, resumed=resume_id is not None))
    try:
        yield op_id
    except BaseException as exc:
        error = str(exc) or type(exc).__name__
        store.finish_operation(op_id, "failed", error=error)
        events(OperationFinished(op_id, kind, env, "failed", error))
        raise
    else:
        store.finish_operation(op_id, "succeeded")
        events(OperationFinished(op_id, kind, env, "succeeded"))
    finally:
        store.release_lock(env, op_id)
