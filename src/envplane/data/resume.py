"""`envplane resume` of a data operation (restore, clone, sync): run its remaining steps."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from envplane.data import transfer
from envplane.data.restore import resume_restore
from envplane.errors import BadInput
from envplane.plan.model import Plan
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.lifecycle.apply import Outcome


def resume_data(ws: Workspace, op_id: str) -> Outcome:
    from envplane.lifecycle.apply import Outcome

    op = ws.store.get_operation(op_id)
    if op is None or not isinstance(op.plan, dict):
        raise BadInput(f"operation {op_id!r} has no resumable plan")
    started = time.monotonic()
    plan = dict(op.plan)
    if op.kind == "restore":
        resume_restore(ws, op_id, plan)
    elif op.kind in ("clone", "sync"):
        transfer.run(
            ws,
            op.kind,
            str(plan.get("source")),
            op.env,
            unmasked=bool(plan.get("unmasked")),
            resume_id=op_id,
        )
    else:
        raise BadInput(f"operation {op_id} ({op.kind}) cannot be resumed")
    empty = Plan(op.env, "local", op.kind, ())
    return Outcome(
        op.env,
        empty,
        op_id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=[f"{op.kind} {op_id}: the remaining steps ran"],
    )


def finish_pending_clone(ws: Workspace, env: str) -> str:
    """The data copy of a clone whose create was interrupted (recorded in its definition)."""
    record = ws.store.get_environment(env)
    definition = dict(record.definition or {}) if record else {}
    pending = definition.pop("pending_data", None)
    if not isinstance(pending, dict):
        return "no pending data copy"
    source = str(pending.get("source"))
    op_id, _lines, _seconds = transfer.run(
        ws, "clone", source, env, unmasked=bool(pending.get("unmasked"))
    )
    ws.store.save_environment(env, definition=definition)
    return f"data copied from {source} (operation {op_id})"
