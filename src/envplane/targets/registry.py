"""The explicit list of target drivers."""

from __future__ import annotations

from envplane.errors import BadInput
from envplane.targets.base import DataTarget, Target

TARGETS = ("local", "cloud")


def get_target(name: str) -> Target:
    if name == "local":
        from envplane.targets.local import LocalTarget

        return LocalTarget()
    if name == "cloud":
        from envplane.targets.cloud import CloudTarget

        return CloudTarget()
    raise BadInput(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")


def get_data_target(name: str) -> DataTarget:
    """The data operations (backup, restore, clone, sync) of a target."""
    if name == "local":
        from envplane.targets.local.data import LocalData

        return LocalData()
    get_target(name)  # says why another target cannot be used
    raise BadInput(f"target {name!r} has no data operations in this version")
