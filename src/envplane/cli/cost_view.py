"""How costs print: a plan's cost change (Infracost's shape) and `envplane cost`'s tables."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from envplane.cli import output
from envplane.cost.delta import ARROW, money, signed

if TYPE_CHECKING:
    from envplane.service.cost import CostReport

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


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def print_report(report: CostReport) -> None:
    """`envplane cost`: per environment its lines, unpriced items and totals."""
    out = output.console()
    t = report.table
    out.print(
        f"AWS on-demand list prices, 730 h/month, node groups at {report.at} size; "
        f"{t.origin} price table {t.path}, as of {t.as_of}",
        style="dim",
        markup=False,
    )
    for item in report.environments:
        est = item.estimate
        out.print(
            f"\n{est.environment}: {money(est.monthly)}/month ({money(est.hourly)}/hour; "
            f"{money(est.storage_monthly)}/month of it storage, still billed while asleep)",
            style="bold",
            markup=False,
        )
        width = max((len(x.resource) for x in est.lines), default=10)
        for line in est.lines:
            out.print(
                f"  {line.resource.ljust(width)}  {money(line.monthly).rjust(9)}  {line.detail}",
                markup=False,
            )
        for gap in est.unpriced:
            out.print(
                f"  {gap.resource.ljust(width)}  {'unpriced'.rjust(9)}  {gap.reason}",
                style="yellow",
                markup=False,
            )
        if est.blue_green is not None:
            bg = est.blue_green
            out.print(
                f"  during a blue-green deploy: up to +{money(bg.hourly)}/hour for the second "
                f"color, about {bg.minutes} minutes or more per deploy "
                f"(+{money(bg.per_deploy)}): {bg.detail}",
                style="dim",
                markup=False,
            )
        if item.measured is not None:
            m = item.measured
            out.print(
                f"  measured on the {m.target} target now: {m.processes} processes, "
                f"{m.cpu_seconds:.1f} CPU seconds, {_bytes(m.rss_bytes)} resident, "
                f"{_bytes(m.disk_bytes)} on disk",
                markup=False,
            )
    unpriced = f"; {report.unpriced} unpriced (not counted)" if report.unpriced else ""
    out.print(
        f"\ntotal: {money(report.monthly)}/month for {len(report.environments)} "
        f"environment(s){unpriced}",
        style="bold",
        markup=False,
    )
