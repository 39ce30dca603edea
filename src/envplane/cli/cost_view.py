"""How costs print: a plan's cost change (Infracost's shape) and `envplane cost`'s tables."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from envplane.cli import output
from envplane.cost.delta import ARROW, money, signed

SYMBOL = {"create": "+", "update": "~", "delete": "-"}


def _table_label(table: dict[str, Any] | Any) -> str:
    origin = table.get("origin") if isinstance(table, dict) else table.origin
    as_of = table.get("as_of") if isinstance(table, dict) else table.as_of
    return f"{origin} price table, as of {as_of}"


def print_cost_change(cost: dict[str, Any]) -> None:
    """The `cost` section of a plan's document (envplane.cost.delta.CostChange as JSON)."""
    out = output.console()
    if "error" in cost:
        out.print(f"Cost: not estimated: {cost['error']}", style="yellow", markup=False)
        if cost.get("hint"):
            out.print(f"  hint: {cost['hint']}", markup=False)
        return
    out.print(
        f"Cost (AWS on-demand list prices, 730 h/month; {_table_label(cost['table'])}):",
        style="bold",
        markup=False,
    )
    for line in cost["lines"]:
        before, after = Decimal(line["monthly_before"]), Decimal(line["monthly_after"])
        was = f" ({money(before)} {ARROW} {money(after)})" if line["action"] == "update" else ""
        out.print(
            f"  {SYMBOL[line['action']]} {line['text']}  {signed(Decimal(line['delta']))}{was}",
            style=output.STYLE[line["action"]],
            markup=False,
        )
    for item in cost["unpriced"]:
        out.print(f"  ? {item['resource']}: unpriced ({item['reason']})", markup=False)
    out.print(f"  {cost['summary']}", style="bold", markup=False)
