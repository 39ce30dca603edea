"""What each page shows, read through the service layer (the calls the API's routes make).
Nothing here decides anything: a figure that cannot be had is None and shows as "—", and a
part that fails says why instead of hiding the rest of the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

from envplane import service
from envplane.errors import EnvplaneError
from envplane.service import delivery
from envplane.service.listing import environment_summaries, live_release, recent_validations
from envplane.service.results import EnvironmentView, OperationView
from envplane.service.results_data import BackupListing
from envplane.workspace import Workspace

T = TypeVar("T")
GONE = ("not created", "destroyed")
# Each row's services and URL come from a live look at its target (what `envplane list`
# does); past this many environments the rest show what the store recorded, so that the
# list (and its poll every few seconds) stays quick with hundreds of recorded environments.
LIVE_LIMIT = 40


def quietly(read: Callable[[], T]) -> tuple[T | None, str | None]:
    """(what `read` gave, None) or (None, the error's message): one part of a page."""
    try:
        return read(), None
    except EnvplaneError as exc:
        return None, exc.message


@dataclass
class Row:
    """One environment of the list (also the JSON the list polls)."""

    name: str
    status: str
    target: str | None
    release: str | None = None
    ready: int | None = None
    desired: int | None = None
    url: str | None = None
    monthly: str | None = None
    hourly: str | None = None
    expires_at: str | None = None
    expires_in_minutes: int | None = None
    preview: bool = False
    last_operation: dict[str, str] | None = None
    note: str | None = None

    def json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _url(endpoints: dict[str, str]) -> str | None:
    """The address a person opens: the frontend's, else the first web endpoint."""
    if "frontend" in endpoints:
        return endpoints["frontend"]
    return next((u for u in endpoints.values() if u.startswith(("http://", "https://"))), None)


def _costs(ws: Workspace) -> dict[str, tuple[Decimal, Decimal]]:
    """Environment -> (monthly, hourly) at list prices, priced lines only; {} when the price
    table cannot be read."""
    from envplane.service.cost import cost

    report, _ = quietly(lambda: cost(ws, None, measure=False))
    if report is None:
        return {}
    return {
        e.estimate.environment: (e.estimate.monthly, e.estimate.hourly) for e in report.environments
    }


def _live_view(ws: Workspace, env: str) -> EnvironmentView:
    return EnvironmentView.of(service.info(ws, env))


def environment_rows(ws: Workspace) -> list[Row]:
    from envplane.service.previews import preview_list

    # The pipeline's environments first, in its order (development, staging, production),
    # then the others as the store lists them.
    order = {env: i for i, env in enumerate(quietly(lambda: ws.matrix.pipeline())[0] or [])}
    summaries = sorted(environment_summaries(ws), key=lambda s: order.get(s.name, len(order)))
    previews = {p.name: p for p in quietly(lambda: preview_list(ws))[0] or []}
    costs = _costs(ws)
    rows: list[Row] = []
    looked = 0
    for s in summaries:
        row = Row(name=s.name, status=s.status, target=s.target)
        if s.name in costs:
            row.monthly = f"{costs[s.name][0]:.2f}"
        if s.status not in GONE and looked >= LIVE_LIMIT:
            row.note = "live status: open the environment"
        elif s.status not in GONE:
            looked += 1
            view, row.note = quietly(partial(_live_view, ws, s.name))
            if view is not None:
                row.status, row.release, row.url = view.status, view.release, _url(view.endpoints)
                row.ready = sum(v.ready for v in view.services.values())
                row.desired = sum(v.desired for v in view.services.values())
                if view.last_operation is not None:
                    op = view.last_operation
                    row.last_operation = {"id": op.id, "kind": op.kind, "status": op.status}
        p = previews.get(s.name)
        if p is not None:
            row.preview, row.monthly = True, None
            row.hourly = p.cost_per_hour
            row.expires_at, row.expires_in_minutes = p.expires_at.isoformat(), p.expires_in_minutes
            row.url = row.url or p.url
        rows.append(row)
    return rows


def matches(row: Row, query: str | None) -> bool:
    """The filter: every word appears in the row's name, status, target or release."""
    if not query:
        return True
    text = " ".join(str(v) for v in (row.name, row.status, row.target, row.release) if v).lower()
    return all(word in text for word in query.lower().split())


@dataclass
class EnvironmentPage:
    view: EnvironmentView
    status: delivery.StatusView | None
    operations: list[OperationView]
    backups: list[BackupListing]
    validations: list[Any]
    drift: dict[str, Any] | None
    releases: list[delivery.ReleaseView]
    production_like: bool
    problems: dict[str, str] = field(default_factory=dict)  # part -> why it is missing


def environment_page(ws: Workspace, env: str) -> EnvironmentPage:
    from envplane.service.drift import drift
    from envplane.service.identities import production_like

    view = EnvironmentView.of(service.info(ws, env))  # an unknown environment: the error page
    problems: dict[str, str] = {}
    created = view.status not in GONE

    def part(name: str, read: Callable[[], T]) -> T | None:
        got, why = quietly(read)
        if why is not None:
            problems[name] = why
        return got

    status = part("release", lambda: delivery.status(ws, env)) if created else None
    return EnvironmentPage(
        view=view,
        status=status,
        operations=[
            OperationView.of(o)
            for o in part("operations", lambda: service.history(ws, env, limit=10)) or []
        ],
        backups=[
            BackupListing.of(b)
            for b in part("backups", lambda: service.list_backups(ws, env)) or []
        ],
        validations=recent_validations(ws, env),
        drift=part("drift", lambda: drift(ws, env).to_json()) if created else None,
        releases=delivery.releases(ws, limit=20),
        production_like=production_like(ws, env),
        problems=problems,
    )


@dataclass
class Stage:
    env: str
    status: str
    release: str | None
    since: Any = None


@dataclass
class Pending:
    promotion: delivery.PromotionView
    gates: dict[str, str]  # gate -> "open: ..." or "closed: ..."


def pipeline(ws: Workspace) -> list[Stage]:
    recorded = {s.name: s.status for s in environment_summaries(ws)}
    out = []
    for env in ws.matrix.pipeline():
        live = live_release(ws, env)
        out.append(
            Stage(
                env,
                recorded.get(env, "not created"),
                live.release_id if live else None,
                live.since if live else None,
            )
        )
    return out


def pending(ws: Workspace) -> list[Pending]:
    waiting = [p for p in delivery.promotions(ws) if p.status in ("pending", "approved")]
    return [Pending(p, delivery.promotion_gates(ws, p)) for p in waiting]
