"""One rule for every operation that replaces or removes the data or the traffic of an
`approval_required` environment (destroy, restore, sync of data, and the coming rollback
with data): refused without --force, and audited when forced. A dry run is never refused:
it changes nothing and shows what would be refused."""

from __future__ import annotations

from envplane.desired import matrix_for
from envplane.errors import BadInput, Blocked
from envplane.workspace import Workspace


def approval_required(ws: Workspace, env: str) -> bool:
    """The environment's deployment strategy says approval_required (a clone: its source's
    definition decides); False when the matrix no longer names it (what the store says is
    all there is then)."""
    try:
        return bool(matrix_for(ws, env).strategy_for(env).approval_required)
    except BadInput:
        return False


def guard(ws: Workspace, env: str, *, doing: str, force: bool, again: str) -> None:
    """Raise Blocked unless `force` when `env` requires approval; `doing` names what is
    refused ("destroy", "replacing its data"), `again` the command to repeat with --force."""
    if not approval_required(ws, env):
        return
    if not force:
        raise Blocked(
            f"environment {env!r} requires approval (approval_required: true); {doing} refused",
            hint=f"if you really mean it: {again} --force",
        )
    ws.store.audit(env, "forced", f"{doing} of an approval_required environment (--force)")
