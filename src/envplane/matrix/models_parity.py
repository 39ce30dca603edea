"""`parity:` — which differences between environments are intended (issue 12).

At the top level for every environment, or under one environment for its own differences.
Key paths are the ones `envplane parity` prints (`databases.primary.instance_class`,
`config.app-config.LOG_LEVEL`, `services.backend.replicas`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from envplane.matrix.modelbase import StrictModel

KeyPattern = Annotated[str, Field(min_length=1, max_length=300)]
Reason = Annotated[str, Field(min_length=1, max_length=500)]


class ScaleKeys(StrictModel):
    """Edits to the default list of keys expected to differ by size."""

    add: list[KeyPattern] = []
    remove: list[KeyPattern] = []


class EnvParity(StrictModel):
    allow: dict[KeyPattern, Reason] = {}


class ParitySpec(StrictModel):
    allow: dict[KeyPattern, Reason] = {}
    scale: ScaleKeys = ScaleKeys()
