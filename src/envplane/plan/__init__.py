"""Plans: what an operation will do, step by step, each with the reason and the field changes."""

from envplane.plan.model import Change, Plan, Step

__all__ = ["Change", "Plan", "Step"]
