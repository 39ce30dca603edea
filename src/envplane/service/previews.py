"""Previews for the front doors: create (then deploy a release, if asked), list, extend,
destroy; each answer is the `-o json` document (a CI job posts `preview create`'s on its
pull request)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pydantic import Field

from envplane.errors import BadInput
from envplane.plan.model import Plan
from envplane.previews.create import PreviewOutcome, create_preview
from envplane.previews.manage import PreviewStatus, destroy_preview, extend, list_previews
from envplane.previews.spec import Rate, rate_of
from envplane.service.delivery import DeployView, deploy
from envplane.service.reaping import GcView as GcView  # gc's own module, re-exported
from envplane.service.reaping import OrphanView as OrphanView
from envplane.service.reaping import gc as gc
from envplane.service.reaping import gc_every as gc_every
from envplane.service.results import Timestamp, View
from envplane.service.sleeping import SleepView as SleepView  # sleep/wake's own module
from envplane.service.sleeping import sleep as sleep
from envplane.service.sleeping import wake as wake
from envplane.state.base import now
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace


def _money(value: Decimal | None) -> str | None:
    return None if value is None else f"{value:.2f}"


class PreviewView(View):
    name: str
    """The preview's environment name (from the branch: the same branch, the same name)."""
    branch: str
    source: str
    """The environment it is derived from."""
    creator: str
    created_at: Timestamp
    expires_at: Timestamp
    expires_in_minutes: int
    """Negative once expired: the next `envplane gc` destroys it."""
    state: str
    """awake or asleep."""
    url: str | None = None
    cost_per_hour: str | None = None
    """USD while awake, at the price table's list prices; null when it cannot be priced."""
    cost_so_far: str | None = None
    """USD: hours awake x cost per hour, plus storage while asleep."""

    @classmethod
    def of(cls, rec: PreviewRecord, *, url: str | None, rate: Rate | None) -> PreviewView:
        return cls(**_fields(rec, url, rate))


def _fields(rec: PreviewRecord, url: str | None, rate: Rate | None) -> dict[str, Any]:
    at = now()
    return {
        "name": rec.env,
        "branch": rec.branch,
        "source": rec.source,
        "creator": rec.creator,
        "created_at": rec.created_at,
        "expires_at": rec.expires_at,
        "expires_in_minutes": int(rec.seconds_left(at) // 60),
        "state": rec.state,
        "url": url,
        "cost_per_hour": _money(rate.hourly) if rate else None,
        "cost_so_far": _money(rate.so_far(rec, at)) if rate else None,
    }


class PreviewCreated(PreviewView):
    created: bool
    """False: the branch's preview existed; it was updated and its expiry moved on."""
    operations: list[str] = Field(default_factory=list)
    masking: list[str] = Field(default_factory=list)
    messages: list[str] = Field(default_factory=list)
    release: DeployView | None = None
    seconds: float = 0.0


class PreviewListed(PreviewView):
    status: str
    """The environment's status (ready, failed, ...)."""


def preview_create(
    ws: Workspace,
    branch: str,
    *,
    source: str | None = None,
    ttl: str | None = None,
    with_data: bool = False,
    release: str | None = None,
    show_plan: Callable[[Plan], None] | None = None,
) -> PreviewCreated:
    if release is not None and ws.store.get_release(release) is None:  # before any create
        raise BadInput(
            f"no release {release!r} in the state store",
            hint="a release is recorded by `envplane release create`, which prints its id",
        )
    done: PreviewOutcome = create_preview(
        ws, branch, source=source, ttl=ttl, with_data=with_data, show_plan=show_plan
    )
    view = PreviewCreated(
        **_fields(done.record, done.url, done.rate),
        created=done.created,
        operations=done.operations,
        masking=done.masking,
        messages=done.messages,
        seconds=round(done.seconds, 3),
    )
    if release is not None:
        view.release = deploy(ws, done.record.env, release)
    return view


def preview_list(ws: Workspace) -> list[PreviewListed]:
    return [_listed(s) for s in list_previews(ws)]


def _listed(s: PreviewStatus) -> PreviewListed:
    return PreviewListed(**_fields(s.record, None, s.rate), status=s.status)


def preview_extend(ws: Workspace, name: str, ttl: str) -> PreviewView:
    return PreviewView.of(extend(ws, name, ttl), url=None, rate=rate_of(ws, name))


def preview_destroy(
    ws: Workspace, name: str, *, dry_run: bool = False, show: Callable[[Plan], None] | None = None
) -> tuple[bool, list[str]]:
    """(destroyed now, messages): a dry run or one destroyed already is (False, why)."""
    done = destroy_preview(ws, name, dry_run=dry_run, show=show)
    return done.applied, list(done.messages)
