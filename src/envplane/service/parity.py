"""Parity and explain for the front doors: the matrix's report, or what runs (`live`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from envplane.consistency.explain import Explanation, explain_key
from envplane.consistency.parity import ParityReport, parity
from envplane.consistency.parity_live import live_parity

if TYPE_CHECKING:
    from envplane.workspace import Workspace


def parity_report(ws: Workspace, envs: list[str], *, live: bool = False) -> ParityReport:
    """Every setting of `envs` (default: the pipeline's) compared; `live`: what runs there
    (releases deployed, rendered files on disk) instead of the matrix."""
    if live:
        return live_parity(ws, envs or None)
    return parity(ws.matrix, envs or None)


def explain(ws: Workspace, env: str, key: str) -> Explanation:
    """Where `key` of `env` gets its value, layer by layer."""
    return explain_key(ws, env, key)
