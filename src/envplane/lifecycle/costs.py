"""The cost change of a create or update plan: what the matrix now asks for, priced, against
what the environment was last applied with (docs/cost.md).

The priced matrix values (`cost.basis`) travel in the plan's document, so the journal of
every create and update records them; the next plan reads the last succeeded one back and
prices both sides with today's table. No column or migration is needed.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from envplane.cost.delta import cost_change
from envplane.cost.estimate import cost_basis, environment_of, estimate_environment
from envplane.cost.model import CostEstimate
from envplane.cost.prices import PriceTable, load_table
from envplane.desired import matrix_for
from envplane.errors import EnvplaneError
from envplane.matrix import Matrix
from envplane.plan.model import Plan
from envplane.workspace import Workspace

_HISTORY = 100  # operations looked back through for the last applied create or update


def with_cost(ws: Workspace, env: str, plan: Plan, matrix: Matrix | None = None) -> Plan:
    """`plan` with its `cost` section. A cost that cannot be estimated (a damaged imported
    price table) never blocks a plan: the section then says why it is missing."""
    try:
        m = matrix or matrix_for(ws, env)
        environment = m.environment(env)
        table = load_table(ws.settings.home)
        after = estimate_environment(env, environment, table, strategy=m.strategy_for(env))
        if plan.operation == "create":
            before, known = None, True
        else:
            before, known = last_applied(ws, env, table)
        change = cost_change(before, after, cost_basis(environment), before_known=known)
    except EnvplaneError as exc:
        return replace(plan, cost={"error": exc.message, "hint": exc.hint})
    return replace(plan, cost=change.model_dump(mode="json"))


def with_destroy_cost(ws: Workspace, env: str, plan: Plan) -> Plan:
    """A destroy plan with what stops being billed: the last applied estimate down to $0.
    Works from the store alone, as destroy does; nothing known, nothing shown."""
    try:
        table = load_table(ws.settings.home)
        before, _known = last_applied(ws, env, table)
    except EnvplaneError:
        return plan
    if before is None:
        return plan
    after = CostEstimate(
        environment=env,
        at=before.at,
        monthly=Decimal(0),
        hourly=Decimal(0),
        storage_monthly=Decimal(0),
        lines=[],
        unpriced=[],
        table=table.info,
    )
    return replace(plan, cost=cost_change(before, after, {}).model_dump(mode="json"))


def last_applied(ws: Workspace, env: str, table: PriceTable) -> tuple[CostEstimate | None, bool]:
    """The estimate of what `env` was last applied with, priced with `table`; the flag says
    whether it is known (False: applied before costs were recorded)."""
    for op in ws.store.operations(env, limit=_HISTORY):
        if op.status != "succeeded" or op.kind not in ("create", "update", "destroy"):
            continue
        if op.kind == "destroy":
            return None, True  # nothing of it runs: a plan from here is a create
        basis = _basis_of(op.plan)
        environment = environment_of(basis) if basis is not None else None
        if environment is None:
            return None, False
        return estimate_environment(env, environment, table), True
    return None, False


def _basis_of(plan: Any) -> dict[str, Any] | None:
    cost = plan.get("cost") if isinstance(plan, dict) else None
    basis = cost.get("basis") if isinstance(cost, dict) else None
    return basis if isinstance(basis, dict) else None
