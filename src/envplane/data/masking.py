"""Masking data that leaves an approval-gated environment: the target-neutral policy.

Rules come from the source environment's `data:` block in the matrix. Which rules apply is
decided here (`decide`); the driver matches them with the source's schema before anything is
copied (DataTarget.check_masking) and runs them in the copy (DataTarget.apply_masking), its
own way. hash is deterministic, salted with a secret of the source environment (`salt`), so
equal values stay equal and joins on masked columns still match.
"""

from __future__ import annotations

from envplane.data.envs import approval_required
from envplane.desired import ensure_secrets, matrix_for
from envplane.errors import BadInput, Blocked
from envplane.matrix.models import DataRules
from envplane.workspace import Workspace

SALT_SECRET = "masking-salt"  # noqa: S105 - the name of a secret


def decide(ws: Workspace, source: str, target: str, *, unmasked: bool) -> DataRules | None:
    """The rules to apply to data copied from `source` into `target`, or None for none."""
    if not approval_required(ws, source) or approval_required(ws, target) or unmasked:
        return None
    try:
        rules = matrix_for(ws, source).environment(source).data
    except BadInput:
        rules = None
    if rules is None or not (rules.masking or rules.subset):
        raise Blocked(
            f"{source!r} requires approval and declares no masking rules: its data will not "
            f"be copied unmasked into {target!r}",
            hint=f"declare environments.{source}.data.masking in the matrix, or pass --unmasked",
        )
    return rules


def salt(ws: Workspace, source: str) -> str:
    ensure_secrets(ws, source, (SALT_SECRET,))
    return ws.store.get_secret(source, SALT_SECRET)
