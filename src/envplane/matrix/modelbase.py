"""What every matrix model shares: strict, frozen, no unknown keys; durations."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration(value: object) -> object:
    """`30s`, `10m`, `1h`, `500ms`, or a number of seconds."""
    if isinstance(value, bool):
        return value  # refused by the float type
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.fullmatch(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise PydanticCustomError(
            "duration",
            "expected a duration like 30s, 10m, 1h or 500ms, got {value}",
            {"value": repr(value)},
        )
    if not 0 <= seconds <= 7 * 86400:
        raise PydanticCustomError("duration", "a duration is between 0s and 7 days", None)
    return seconds


Duration = Annotated[float, BeforeValidator(_duration)]

_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")


def _label(value: str) -> str:
    if not _LABEL_RE.fullmatch(value):
        raise ValueError(
            f"invalid label {value!r}: up to 63 lower-case letters, digits, '.', '_', '-', "
            "starting and ending with a letter or digit, like 'tier' or 'production-like'"
        )
    return value


LabelKey = Annotated[str, AfterValidator(_label)]
LabelValue = Annotated[str, Field(max_length=63), AfterValidator(_label)]
