"""What an estimate is made of: priced lines, what could not be priced, the totals.

Money is `Decimal` (USD) end to end: the table's unit prices are read as decimals, so a line
is exactly quantity x unit price x 730 and a test can compute the same figure by hand. JSON
carries amounts as strings ("146.0000"), as Infracost's does, so no float rounds them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

HOURS_PER_MONTH = Decimal(730)  # AWS's and Infracost's month: 365 x 24 / 12
At = Literal["min", "desired", "max"]
TIMES = "\u00d7"  # the sign in "2 \u00d7 t3.medium"
LineKind = Literal["compute", "storage", "network", "control_plane", "security"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class CostLine(_Frozen):
    """One priced resource: "node group general-purpose", "2 x t3.medium"."""

    resource: str  # stable across estimates: what a plan's delta pairs lines by
    detail: str
    monthly: Decimal
    hourly: Decimal
    kind: LineKind
    quantity: Decimal  # 2 (nodes), 20 (GB), 1 (gateway)
    unit: str  # what one of `quantity` is: "t3.medium", "GB gp3", "NAT gateway"
    unit_price: Decimal  # per hour, or per GB-month for storage
    region: str


class Unpriced(_Frozen):
    """A resource the price table has no figure for. Never counted as $0."""

    resource: str
    reason: str


class BlueGreenExtra(_Frozen):
    """The second color a blue-green deploy runs beside the first, while it runs."""

    hourly: Decimal  # the environment's compute once more (node groups)
    minutes: Decimal  # how long both colors run, at least
    per_deploy: Decimal  # hourly x minutes / 60
    detail: str


class TableInfo(_Frozen):
    """Which price table priced an estimate: shown by `cost`, so a stale one is noticed."""

    origin: Literal["shipped", "imported"]
    path: str
    as_of: str
    source: str


class CostEstimate(_Frozen):
    environment: str
    at: At
    monthly: Decimal  # priced lines only
    hourly: Decimal
    storage_monthly: Decimal  # what still costs while the environment is asleep
    lines: list[CostLine]
    unpriced: list[Unpriced]
    table: TableInfo
    blue_green: BlueGreenExtra | None = None

    def line(self, resource: str) -> CostLine | None:
        return next((x for x in self.lines if x.resource == resource), None)
