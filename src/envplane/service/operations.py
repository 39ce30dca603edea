"""Resume of any operation kind, through the engine's registry (every kind registered by the
capabilities this package imports)."""

from __future__ import annotations

import envplane.data
import envplane.delivery.deploy
import envplane.lifecycle
import envplane.previews.sleep  # noqa: F401 - registers create, update, destroy; sleep
from envplane.engine import registry
from envplane.engine.outcome import Outcome
from envplane.workspace import Workspace


def resume(ws: Workspace, op_id: str) -> Outcome:
    """Finish an interrupted or failed operation from where the world is now."""
    return registry.resume(ws, op_id)
