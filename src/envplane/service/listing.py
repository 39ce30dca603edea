"""The environments list as the API's `GET /environments` serves it: what the store records
and the matrix names, in one query — no live look at any target (`list_environments` asks
each environment's target how its services are; one environment's page asks that)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envplane.errors import BadInput
from envplane.service.results import Timestamp, View

if TYPE_CHECKING:
    from envplane.state.records import LiveRecord, ValidationRecord
    from envplane.workspace import Workspace


class EnvironmentSummary(View):
    name: str
    status: str
    """As recorded (ready, failed, creating...), or "not created" for a matrix environment."""
    target: str | None
    template: str | None
    in_matrix: bool
    """False for an environment the matrix does not name (a clone, a preview)."""
    last_operation_id: str | None
    updated_at: Timestamp | None


def environment_summaries(ws: Workspace) -> list[EnvironmentSummary]:
    """Every environment of the matrix and every one the store records (not destroyed)."""
    try:
        names = list(ws.matrix.environments)
    except BadInput:
        names = []  # a broken matrix must not hide what runs
    out: dict[str, EnvironmentSummary] = {
        n: EnvironmentSummary(
            name=n,
            status="not created",
            target=None,
            template=None,
            in_matrix=True,
            last_operation_id=None,
            updated_at=None,
        )
        for n in names
    }
    for name, status, target, template, last_op, updated in ws.store.environment_summaries():
        out[name] = EnvironmentSummary.model_construct(  # the store's values, already typed
            name=name,
            status=status,
            target=target,
            template=template,
            in_matrix=name in out,
            last_operation_id=last_op,
            updated_at=updated,
        )
    return list(out.values())


def preview_name_for(ws: Workspace, branch: str) -> str:
    """The environment a preview of `branch` is (what a scope is checked against)."""
    from envplane.previews.naming import preview_name
    from envplane.previews.spec import spec_of

    return preview_name(branch, spec_of(ws).prefix)


def recent_validations(ws: Workspace, env: str, limit: int = 5) -> list[ValidationRecord]:
    """ENV's last recorded validation results, newest first (what the promotion gate reads)."""
    return list(ws.store.validations(env, limit=limit))


def live_release(ws: Workspace, env: str) -> LiveRecord | None:
    """What is live in ENV as recorded: its release and since when (None before a deploy)."""
    return ws.store.get_live(env)
