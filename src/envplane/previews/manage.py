"""preview list, extend, destroy: the previews as the store records them, with how long each
has left and what it has cost so far."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from envplane.errors import BadInput
from envplane.lifecycle import Outcome, destroy
from envplane.names import check_env_name
from envplane.plan.model import Plan
from envplane.previews.quotas import live_previews
from envplane.previews.spec import Rate, capped_expiry, parse_ttl, rate_of
from envplane.state.base import now
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace


@dataclass(frozen=True)
class PreviewStatus:
    record: PreviewRecord
    status: str  # the environment's: ready, failed, ...
    rate: Rate | None
    cost_so_far: Decimal | None
    at: datetime

    @property
    def expires_in_minutes(self) -> int:
        """Whole minutes left (negative once expired: gc reaps it on its next run)."""
        left = self.record.seconds_left(self.at)
        return int(left // 60)


def list_previews(ws: Workspace) -> list[PreviewStatus]:
    at = now()
    out = []
    rates: dict[str, Rate | None] = {}
    for rec in live_previews(ws):
        env = ws.store.get_environment(rec.env)
        if rec.source not in rates:
            rates[rec.source] = rate_of(ws, rec.env)  # a preview costs what its source costs
        rate = rates[rec.source]
        out.append(
            PreviewStatus(
                record=rec,
                status=env.status if env else "creating",  # recorded, its environment not yet
                rate=rate,
                cost_so_far=rate.so_far(rec, at) if rate else None,
                at=at,
            )
        )
    return out


def preview(ws: Workspace, name: str) -> PreviewRecord:
    check_env_name(name, what="preview name")
    rec = ws.store.get_preview(name)
    env = ws.store.get_environment(name)
    if rec is None or rec.ended_at is not None or env is None or env.status == "destroyed":
        raise BadInput(
            f"{name!r} is not a preview", hint="`envplane preview list` shows the previews"
        )
    return rec


def extend(ws: Workspace, name: str, ttl: str) -> PreviewRecord:
    """Move the expiry to now + ttl (never earlier than it is), within max_ttl of creation."""
    rec = preview(ws, name)
    seconds = parse_ttl(ttl, 0)
    wanted = max(rec.expires_at, now() + timedelta(seconds=seconds))
    expires = capped_expiry(ws, rec.created_at, wanted, asked=f"--ttl {ttl}")
    updated = ws.store.set_preview_expiry(name, expires)
    ws.store.audit(name, "preview-extended", f"expires {expires:%Y-%m-%d %H:%M} UTC")
    return updated


def destroy_preview(
    ws: Workspace, name: str, *, dry_run: bool = False, show: Callable[[Plan], None] | None = None
) -> Outcome:
    """The normal verified destroy; the preview's record is closed once it succeeded. One
    destroyed already is done with (the outcome says so), so a CI cleanup can be repeated."""
    check_env_name(name, what="preview name")
    if ws.store.get_preview(name) is None or ws.store.get_environment(name) is None:
        raise BadInput(
            f"{name!r} is not a preview", hint="`envplane preview list` shows the previews"
        )
    done = destroy(ws, name, force=True, dry_run=dry_run, show=show)
    if not dry_run:
        env = ws.store.get_environment(name)
        if env is not None and env.status == "destroyed":
            ws.store.end_preview(name)
    return done
