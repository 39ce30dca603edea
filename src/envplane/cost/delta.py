"""The cost change a plan makes, in Infracost's shape.

    monthly cost will increase by $586 (+73%)
    ~ node group web (2 -> 4 x m6i.large)  +$140 ($140 -> $280)

Lines are paired by their `resource` ("node group web"); both sides are priced with the same
table, so a change is the matrix's, not the price list's.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from envplane.cost.model import TIMES, CostEstimate, CostLine, TableInfo, Unpriced, _Frozen

ARROW = "\u2192"
LineAction = Literal["create", "update", "delete"]


class LineChange(_Frozen):
    action: LineAction
    resource: str
    text: str  # "node group web (2 -> 4 x m6i.large)"
    monthly_before: Decimal
    monthly_after: Decimal
    delta: Decimal


class CostChange(_Frozen):
    """What a plan's JSON carries under `cost`."""

    environment: str
    before_known: bool  # False: the environment was applied before costs were recorded
    monthly_before: Decimal | None
    monthly_after: Decimal
    delta: Decimal | None
    percent: Decimal | None  # None when there was nothing before (or it is not known)
    summary: str
    lines: list[LineChange]
    unpriced: list[Unpriced]
    table: TableInfo
    basis: dict[str, Any]  # the matrix values priced: recorded with the operation


def money(value: Decimal) -> str:
    """$1,234 for whole dollars, $12.34 below $100 (as Infracost rounds its summary)."""
    places = Decimal(1) if abs(value) >= 100 else Decimal("0.01")
    rounded = value.quantize(places, rounding=ROUND_HALF_UP)
    return f"${rounded:,}"


def signed(value: Decimal) -> str:
    return f"-{money(-value)}" if value < 0 else f"+{money(value)}"


def _what(line: CostLine) -> str:
    return f"{line.quantity.normalize():f} {TIMES} {line.unit}"


def _text(before: CostLine | None, after: CostLine | None) -> str:
    if before is not None and after is not None:
        if before.unit == after.unit and before.quantity != after.quantity:
            q0, q1 = before.quantity.normalize(), after.quantity.normalize()
            return f"{after.resource} ({q0:f} {ARROW} {q1:f} {TIMES} {after.unit})"
        if before.unit != after.unit:
            return f"{after.resource} ({_what(before)} {ARROW} {_what(after)})"
        return f"{after.resource} ({after.detail})"
    line = after or before
    assert line is not None
    return f"{line.resource} ({line.detail})"


def _summary(before: Decimal | None, after: Decimal, known: bool) -> tuple[str, Decimal | None]:
    if not known or before is None:
        return f"monthly cost will be {money(after)} (the cost before is not recorded)", None
    delta = after - before
    if before == 0:
        if delta == 0:
            return "monthly cost will not change", None
        return f"monthly cost will increase by {money(delta)} (from $0)", None
    percent = (delta * 100 / before).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    if delta == 0:
        return f"monthly cost will not change ({money(after)})", Decimal(0)
    verb = "increase" if delta > 0 else "decrease"
    sign = "+" if delta > 0 else "-"
    return f"monthly cost will {verb} by {money(abs(delta))} ({sign}{abs(percent)}%)", percent


def cost_change(
    before: CostEstimate | None,
    after: CostEstimate,
    basis: dict[str, Any],
    *,
    before_known: bool = True,
) -> CostChange:
    """`before` None with `before_known`: nothing existed (a create). Unknown: an
    environment applied before its cost was recorded; only the new total is shown."""
    old = {x.resource: x for x in before.lines} if before is not None else {}
    new = {x.resource: x for x in after.lines}
    lines: list[LineChange] = []
    if before_known:
        for resource in [*new, *(r for r in old if r not in new)]:
            b, a = old.get(resource), new.get(resource)
            m0 = b.monthly if b is not None else Decimal(0)
            m1 = a.monthly if a is not None else Decimal(0)
            same = b is not None and a is not None and b.detail == a.detail and m0 == m1
            if same:
                continue
            action: LineAction = "create" if b is None else "delete" if a is None else "update"
            lines.append(
                LineChange(
                    action=action,
                    resource=resource,
                    text=_text(b, a),
                    monthly_before=m0,
                    monthly_after=m1,
                    delta=m1 - m0,
                )
            )
    monthly_before = (
        (before.monthly if before is not None else Decimal(0)) if before_known else None
    )
    summary, percent = _summary(monthly_before, after.monthly, before_known)
    return CostChange(
        environment=after.environment,
        before_known=before_known,
        monthly_before=monthly_before,
        monthly_after=after.monthly,
        delta=None if monthly_before is None else after.monthly - monthly_before,
        percent=percent,
        summary=summary,
        lines=lines,
        unpriced=after.unpriced,
        table=after.table,
        basis=basis,
    )
