"""`envplane drift ENV`: the front doors' one call (the CLI now, the REST API later)."""

from __future__ import annotations

from envplane.consistency.drift import DriftReport, drift_report
from envplane.workspace import Workspace


def drift(ws: Workspace, env: str) -> DriftReport:
    """What runs in `env` against what envplane applied; read-only."""
    return drift_report(ws, env)
