"""Parity and explain for the front doors: the matrix's report, or what runs (`live`).

Each capability is imported when called: `parity` of the matrix needs neither the store nor
the planner, and start-up is most of a short command's time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envplane.consistency.explain import Explanation
    from envplane.consistency.parity import ParityReport
    from envplane.workspace import Workspace


def parity_report(ws: Workspace, envs: list[str], *, live: bool = False) -> ParityReport:
    """Every setting of `envs` (default: the pipeline's) compared; `live`: what runs there
    (releases deployed, rendered files on disk) instead of the matrix."""
    if live:
        from envplane.consistency.parity_live import live_parity

        return live_parity(ws, envs or None)
    from envplane.consistency.parity import parity

    return parity(ws.matrix, envs or None)


def parity_document(ws: Workspace, envs: list[str], *, live: bool = False) -> dict[str, Any]:
    """The report as `envplane parity -o json` prints it (the API's and the dashboard's)."""
    from envplane.consistency.parity_output import to_json

    return to_json(parity_report(ws, envs, live=live))


def explain(ws: Workspace, env: str, key: str) -> Explanation:
    """Where `key` of `env` gets its value, layer by layer."""
    from envplane.consistency.explain import explain_key

    return explain_key(ws, env, key)
