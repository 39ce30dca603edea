"""An operation's frame: its locks, its journal record, and its outcome, crash-safe."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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
    op_id: str | None = None,
    exclusive: bool = True,
    reads: Sequence[str] = (),
    events: EventSink = discard,
) -> Iterator[str]:
    """Take the operation's locks, record it, hold the locks while it runs, record how it
    ended.

    Every operation changes one environment (`env`, an exclusive lock) and may read others
    (`reads`, shared locks: the source of a clone or sync) for as long as it runs. The locks
    come first, under the id the operation will have: a refused operation records nothing on
    the environment (an audit line says it was refused), so the environment's last operation
    stays the one that ran. The journal line comes right after, so a process killed at any
    point leaves an operation that `envplane resume` can find, and the locks name it.
    A resume takes the operation over once it holds its locks: the row says running again,
    with this process's pid, and the audit trail says who resumed it.

    `exclusive=False` is an operation that only reads `env` (a backup): it records itself on
    `env` but holds a shared lock there. `op_id` is an id chosen in advance (`reading` took a
    shared lock under it before the operation could start).
    """
    op_id = resume_id or op_id or store.new_operation_id()
    read: list[str] = []
    try:
        if exclusive:
            store.acquire_lock(env, op_id)
        else:
            store.acquire_shared(env, op_id)
    except LockHeld as exc:
        store.audit(env, "refused", f"{kind}: {exc.message}")
        raise
    try:
        for other in reads:
            store.acquire_shared(other, op_id)
            read.append(other)
        if resume_id is None:
            store.start_operation(env, kind, plan, op_id=op_id)
        else:
            store.resume_operation(op_id)
            store.audit(env, "resumed", f"operation {op_id} ({kind}) resumed")
        holding = store.lock_operations(env)
        for other_op in store.operations(env, limit=20):
            if other_op.status == "running" and other_op.id not in holding:
                # Its process died holding the (now taken over) lock; say so in the journal.
                store.finish_operation(
                    other_op.id, "failed", error=f"interrupted; superseded by {op_id}"
                )
    except BaseException as exc:
        if isinstance(exc, LockHeld):
            store.audit(env, "refused", f"{kind}: {exc.message}")
        _release(store, env, op_id, read, exclusive)
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
        _release(store, env, op_id, read, exclusive)


@contextmanager
def reading(store: StateStore, env: str, op_id: str) -> Iterator[None]:
    """Hold a shared lock on `env` under `op_id` (the id of the operation that will use what
    is read) for as long as the block runs: a clone's source while its copies are made."""
    store.acquire_shared(env, op_id)
    try:
        yield
    finally:
        store.release_shared(env, op_id)


def _release(
    store: StateStore, env: str, op_id: str, read: Sequence[str], exclusive: bool = True
) -> None:
    for other in read:
        store.release_shared(other, op_id)
    if exclusive:
        store.release_lock(env, op_id)
    else:
        store.release_shared(env, op_id)
