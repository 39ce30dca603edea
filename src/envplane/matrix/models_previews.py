"""`previews:` — per-branch environments, their lifetime and quotas (issue 13).

```yaml
previews:
  from: staging          # the environment a preview is derived from
  prefix: pr-            # names are <prefix><branch>, at most 30 characters
  ttl: 48h               # lifetime of a new preview; `preview extend` adds to it
  max_ttl: 14d           # no preview lives longer than this from its creation
  sleep_after: 1h        # gc puts a preview without requests for this long to sleep
  wake_on_request: true  # the first request to a sleeping preview wakes it
  quotas:
    max_previews: 10     # at once, in this project
    max_per_creator: 3   # at once, per OS user who created them
    monthly_cost_limit: 500  # USD: the previews' monthly cost together
```
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from envplane.matrix.modelbase import StrictModel

# The house Duration stops at 7 days (timeouts, pauses); a preview's lifetime is longer.
_LIFETIME_RE = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
MAX_LIFETIME = 365 * 86400.0


def lifetime_seconds(value: object) -> float:
    """`30s`, `90m`, `48h`, `14d`, or a number of seconds, as seconds (1 s to 365 days)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 48h or 14d")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _LIFETIME_RE.fullmatch(value.strip())):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise ValueError("expected a duration like 30m, 48h or 14d")
    if not 1 <= seconds <= MAX_LIFETIME:
        raise ValueError("a lifetime is between 1s and 365d")
    return seconds


def _lifetime(value: object) -> object:
    try:
        return lifetime_seconds(value)
    except ValueError as exc:
        raise PydanticCustomError("duration", str(exc), None) from None


def _money(value: object) -> object:
    if isinstance(value, bool):
        return value  # refused by the Decimal type
    if isinstance(value, int | float | str):
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            amount = Decimal("NaN")
        if amount.is_finite() and amount >= 0:
            return amount
    raise PydanticCustomError(
        "money", "expected an amount in USD (0 or more) like 500 or 99.5", None
    )


# The name prefix (previews.naming joins it to the branch with one '-').
PREFIX_RE = re.compile(r"^[a-z][a-z0-9-]{0,11}$")


def _prefix(value: str) -> str:
    if not PREFIX_RE.fullmatch(value):
        raise ValueError(
            f"invalid preview prefix {value!r}: start with a letter; use 1 to 12 characters "
            "from a-z, 0-9 and '-', like 'pr-'"
        )
    return value


Lifetime = Annotated[float, BeforeValidator(_lifetime)]
Money = Annotated[Decimal, BeforeValidator(_money)]
Count = Annotated[int, Field(ge=1, le=10_000)]


class PreviewQuotas(StrictModel):
    max_previews: Count | None = None
    max_per_creator: Count | None = None
    monthly_cost_limit: Money | None = None


class PreviewsSpec(StrictModel):
    source: Annotated[str, Field(alias="from", min_length=1, max_length=30)] = "staging"
    prefix: Annotated[str, AfterValidator(_prefix)] = "pr-"
    ttl: Lifetime = 48 * 3600.0
    max_ttl: Lifetime = 14 * 86400.0
    sleep_after: Lifetime | None = None
    wake_on_request: bool = False
    quotas: PreviewQuotas = PreviewQuotas()

    @model_validator(mode="after")
    def _ttl_within_max(self) -> PreviewsSpec:
        if self.ttl > self.max_ttl:
            raise PydanticCustomError(
                "cross_field",
                "ttl is longer than max_ttl: no preview could live that long",
                {"key": "ttl"},
            )
        return self
