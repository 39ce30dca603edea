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
from envplane.state.records import EnvironmentRecord
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


def _names(
    envs: list[str] | None, matrix: list[str], records: list[EnvironmentRecord]
) -> list[str]:
    if envs:
        for env in envs:
            check_env_name(env)
        return list(dict.fromkeys(envs))
    # Default: every environment of the matrix, then recorded ones derived from it (previews,
    # clones) that are not destroyed.
    names = dict.fromkeys(matrix)
    for record in records:
        if record.name not in names and record.definition:
            names[record.name] = None
    return list(names)


def _recorded(ws: Workspace) -> list[EnvironmentRecord]:
    # A SQLite store that was never made holds no environment: not opening it saves the
    # store's start-up (SQLAlchemy, the migrations check), most of a short `cost`.
    url = ws.settings.database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    return ws.store.list_environments()


def _measured(ws: Workspace, env: str, record: EnvironmentRecord | None) -> MeasuredView | None:
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
    records = {r.name: r for r in _recorded(ws)}  # one query, not one per environment
    out: list[EnvironmentCost] = []
    for env in _names(envs, list(ws.matrix.environments), list(records.values())):
        matrix = matrix_for(ws, env)
        est = estimate_environment(
            env, matrix.environment(env), table, at=at, strategy=matrix.strategy_for(env)
        )
        measured = _measured(ws, env, records.get(env)) if measure else None
        out.append(EnvironmentCost(estimate=est, measured=measured))
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
