"""What `envplane cost` and `envplane prices import` call.

`cost` prices environments of the matrix (and recorded environments derived from it, such as
previews) at AWS list prices; for an environment created on a target that can measure itself
(the local one), it also reports what it really uses there.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from envplane.cost import At, CostEstimate, TableInfo, load_table
from envplane.cost.estimate import estimate_environment
from envplane.cost.offers import merge, read_offer
from envplane.cost.prices import write_table
from envplane.desired import matrix_for, project_of
from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.targets.base import UsageTarget
from envplane.workspace import Workspace


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class MeasuredView(_View):
    """What the environment uses on the machine it runs on, measured now."""

    target: str
    processes: int
    cpu_seconds: float
    rss_bytes: int
    disk_bytes: int


class EnvironmentCost(_View):
    estimate: CostEstimate
    measured: MeasuredView | None = None


class CostReport(_View):
    at: At
    table: TableInfo
    environments: list[EnvironmentCost]
    monthly: Decimal  # of the priced lines of every environment
    hourly: Decimal
    unpriced: int  # lines no price was found for, over every environment


class PricesImported(_View):
    offer: str
    version: str
    published: str
    path: str  # the table written
    prices: dict[str, int]  # how many of each kind were taken from the file
    table: TableInfo


def _names(ws: Workspace, envs: list[str] | None) -> list[str]:
    if envs:
        for env in envs:
            check_env_name(env)
        return list(dict.fromkeys(envs))
    # Default: every environment of the matrix, then recorded ones it derives (previews,
    # clones) that are not destroyed.
    names = list(ws.matrix.environments)
    for record in ws.store.list_environments():
        if record.name not in names and record.definition:
            names.append(record.name)
    return names


def _measured(ws: Workspace, env: str) -> MeasuredView | None:
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        return None
    target = ws.target(record.target)
    if not isinstance(target, UsageTarget):
        return None
    ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
    used = target.usage(ctx)
    return MeasuredView(
        target=record.target,
        processes=used.processes,
        cpu_seconds=round(used.cpu_seconds, 2),
        rss_bytes=used.rss_bytes,
        disk_bytes=used.disk_bytes,
    )


def cost(
    ws: Workspace, envs: list[str] | None = None, *, at: At = "desired", measure: bool = True
) -> CostReport:
    """Each environment's monthly cost per resource line; unpriced lines are listed apart."""
    table = load_table(ws.settings.home)
    out: list[EnvironmentCost] = []
    for env in _names(ws, envs):
        matrix = matrix_for(ws, env)
        est = estimate_environment(
            env, matrix.environment(env), table, at=at, strategy=matrix.strategy_for(env)
        )
        out.append(EnvironmentCost(estimate=est, measured=_measured(ws, env) if measure else None))
    return CostReport(
        at=at,
        table=table.info,
        environments=out,
        monthly=sum((e.estimate.monthly for e in out), Decimal(0)),
        hourly=sum((e.estimate.hourly for e in out), Decimal(0)),
        unpriced=sum(len(e.estimate.unpriced) for e in out),
    )


def import_prices(ws: Workspace, file: Path) -> PricesImported:
    """Refresh the table under ENVPLANE_HOME from an offer file; the shipped one is untouched."""
    if not file.is_file():
        raise BadInput(f"{file}: no such file", hint="give the path of an offer file (JSON)")
    imported = read_offer(file)  # first: a bad file changes nothing
    doc = merge(load_table(ws.settings.home), imported, file)
    written = write_table(ws.settings.home, doc)
    table = load_table(ws.settings.home)
    return PricesImported(
        offer=imported.offer,
        version=imported.version,
        published=imported.published,
        path=str(written),
        prices=imported.counts(),
        table=table.info,
    )
