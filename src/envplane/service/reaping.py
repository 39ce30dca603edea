"""gc for the front doors: one pass (or one every interval) of the reaper, as the `-o json`
document. Apart from `service.previews` (which re-exports it) so that `envplane gc`, a cron
job's command, imports the reaper and its document only: creating a preview (the lifecycle,
data copies, delivery) is loaded when a pass has something to destroy, sleep is loaded when a
preview has been awake for `previews.sleep_after`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from envplane.errors import BadInput
from envplane.previews import reaper
from envplane.previews.reaper import GcReport
from envplane.service.results import View
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace


class OrphanView(View):
    name: str
    directory: str
    exists: bool
    """Whether the directory is still there (a process may outlive it)."""
    processes: list[str]
    ports: list[int]
    elsewhere: list[str] = []
    """What a target made for it elsewhere ("cloud: namespace NS on SERVER", ...)."""


class GcView(View):
    dry_run: bool
    expired: list[str]
    """Expired previews destroyed (a dry run: that would be)."""
    resumed: list[str]
    """Previews whose destroy a killed gc left half-done, finished now."""
    put_to_sleep: list[str]
    failed: dict[str, str]
    orphans: list[OrphanView]
    orphans_removed: list[str]
    orphans_left: dict[str, list[str]]
    seconds: float

    @classmethod
    def of(cls, r: GcReport) -> GcView:
        return cls(
            dry_run=r.dry_run,
            expired=r.expired,
            resumed=r.resumed,
            put_to_sleep=r.put_to_sleep,
            failed=r.failed,
            orphans=[
                OrphanView(
                    name=o.name,
                    directory=str(o.directory),
                    exists=o.exists,
                    processes=[p.describe() for p in o.processes],
                    ports=o.ports,
                    elsewhere=[f"{t}: {thing.description}" for t, thing in o.elsewhere],
                )
                for o in r.orphans
            ],
            orphans_removed=r.orphans_removed,
            orphans_left=r.orphans_left,
            seconds=round(r.seconds, 3),
        )


def gc(ws: Workspace, *, dry_run: bool = False, orphans: bool = False) -> GcView:
    return GcView.of(reaper.gc(ws, dry_run=dry_run, orphans=orphans, sleeper=_sleeper(ws)))


def gc_every(
    ws: Workspace,
    interval: float,
    stop: threading.Event,
    *,
    runs: int | None = None,
    each: Callable[[GcView], None] | None = None,
    dry_run: bool = False,
    orphans: bool = False,
) -> int:
    return reaper.gc_every(
        ws,
        interval,
        stop,
        runs=runs,
        each=(lambda r: each(GcView.of(r))) if each is not None else None,
        dry_run=dry_run,
        orphans=orphans,
        sleeper=_sleeper(ws),
    )


def _is_idle(ws: Workspace, rec: PreviewRecord, at: datetime) -> bool:
    from envplane.previews import sleep as sleeping

    return sleeping.is_idle(ws, rec, at)


def _put_to_sleep(ws: Workspace, env: str) -> None:
    from envplane.previews import sleep as sleeping

    sleeping.put_to_sleep(ws, env)


def _sleeper(ws: Workspace) -> reaper.Sleeper | None:
    """gc's idle detector, when the matrix asks for one (previews.sleep_after)."""
    try:
        after = ws.matrix.spec.previews and ws.matrix.spec.previews.sleep_after
    except BadInput:
        return None
    return reaper.Sleeper(_is_idle, _put_to_sleep, after=float(after)) if after else None
