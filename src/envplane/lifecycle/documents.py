"""The lifecycle's plans as they are journaled: typed, read back by the operation registry."""

from __future__ import annotations

from typing import Any

from envplane.engine.registry import OperationPlan


class PlannedStep(OperationPlan):
    action: str
    resource: str
    reason: str = ""
    changes: list[dict[str, Any]] = []
    contains: list[str] = []


class ResourcePlan(OperationPlan):
    """A create, update or destroy: `Plan.to_json()` as stored in the journal."""

    environment: str
    target: str = "local"
    operation: str
    summary: dict[str, int] = {}
    steps: list[PlannedStep] = []
    notes: list[str] = []
