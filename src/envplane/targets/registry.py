"""The explicit list of target drivers."""

from __future__ import annotations

from envplane.errors import BadInput
from envplane.targets.base import Target

TARGETS = ("local", "cloud")


def get_target(name: str) -> Target:
    if name == "local":
        from envplane.targets.local import LocalTarget

        return LocalTarget()
    if name == "cloud":
        raise BadInput(
            "the cloud target cannot apply changes in this version",
            hint="use --target local; the cloud drivers are not part of this version",
        )
    raise BadInput(f"unknown target {name!r}; choose one of: {', '.join(TARGETS)}")
