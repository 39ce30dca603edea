"""What environments cost: a shipped AWS price table, estimates per resource line, plan deltas.

    est = estimate(matrix, "staging", at="desired")
    est.monthly, est.lines[0].detail, est.unpriced

Money is Decimal USD; a month is 730 hours. Whatever the table cannot price is listed in
`unpriced` with the reason, never counted as $0 (docs/cost.md).
"""

from envplane.cost.estimate import estimate, size_at
from envplane.cost.model import (
    HOURS_PER_MONTH,
    At,
    BlueGreenExtra,
    CostEstimate,
    CostLine,
    TableInfo,
    Unpriced,
)
from envplane.cost.prices import PriceTable, load_table, shipped_table

__all__ = [
    "HOURS_PER_MONTH",
    "At",
    "BlueGreenExtra",
    "CostEstimate",
    "CostLine",
    "PriceTable",
    "TableInfo",
    "Unpriced",
    "estimate",
    "load_table",
    "shipped_table",
    "size_at",
]
