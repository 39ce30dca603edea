"""`policies:` — rules an environment must keep, as data (issue 12)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from envplane.matrix.modelbase import StrictModel

Reason = Annotated[str, Field(min_length=1, max_length=500)]


class PolicySpec(StrictModel):
    disable: dict[str, Reason] = {}  # rule id -> why it does not apply here
