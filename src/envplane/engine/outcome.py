"""What an operation of the lifecycle hands back: its plan, its id, whether it ran."""

from __future__ import annotations

from dataclasses import dataclass, field

from envplane.plan.model import Plan


@dataclass
class Outcome:
    environment: str
    plan: Plan
    operation_id: str | None = None
    applied: bool = False
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
