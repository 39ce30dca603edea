"""gc, the reaper: every expired preview destroyed (each a normal verified destroy, journaled,
resumable), a destroy a killed gc left half-done finished, and orphans listed (removed with
`orphans=True`).

A preview's TTL is enforced to within gc's interval: `gc --every 5m` (or a timer) runs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from envplane.errors import EnvplaneError
from envplane.previews.orphans import Orphan, find_orphans, remove_orphan
from envplane.previews.quotas import live_previews
from envplane.state.base import now
from envplane.state.previews import PreviewRecord
from envplane.state.records import EnvironmentRecord
from envplane.workspace import Workspace

# The lifecycle (a destroy) is imported by the pass that destroys something: most passes
# destroy nothing, and `gc` is a command a timer runs every few minutes.


@dataclass(frozen=True)
class Sleeper:
    """How gc puts idle previews to sleep: which are idle (all judged at the pass's start,
    so putting one to sleep never makes another look idle), and the move itself."""

    is_idle: Callable[[Workspace, PreviewRecord, datetime], bool]
    put_to_sleep: Callable[[Workspace, str], None]
    after: float = 0.0  # previews.sleep_after, in seconds

    def may_be_idle(self, rec: PreviewRecord, at: datetime) -> bool:
        """False when `rec` cannot be idle at `at` whatever its front door logged: asleep,
        or awake for less than `after` (its last request cannot be before it woke), so
        `is_idle` - which reads its access log - is asked only about the others."""
        return rec.state == "awake" and (at - rec.state_since).total_seconds() >= self.after


@dataclass
class GcReport:
    dry_run: bool
    expired: list[str] = field(default_factory=list)  # destroyed (or, dry run, would be)
    resumed: list[str] = field(default_factory=list)  # destroys a killed gc left, finished
    failed: dict[str, str] = field(default_factory=dict)  # env -> why
    put_to_sleep: list[str] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    orphans_removed: list[str] = field(default_factory=list)
    orphans_left: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def _unfinished_destroy(ws: Workspace, env: EnvironmentRecord | None) -> str | None:
    """The id of the destroy of this preview that did not finish, if its last was one."""
    if env is None or env.status not in ("destroying", "failed") or not env.last_operation_id:
        return None
    op = ws.store.get_operation(env.last_operation_id)
    if op is None or op.kind != "destroy" or op.status == "succeeded":
        return None
    return op.id


def gc(
    ws: Workspace,
    *,
    dry_run: bool = False,
    orphans: bool = False,
    sleeper: Sleeper | None = None,
) -> GcReport:
    """One pass: expired previews destroyed, idle ones put to sleep (with a `sleeper`)."""
    started = time.monotonic()
    report = GcReport(dry_run)
    at = now()
    idle: list[str] = []
    previews = live_previews(ws)
    # Destroyed ones too: the orphan scan asks only the targets environments were ever made on.
    listed = ws.store.list_environments(include_destroyed=True)
    envs = {e.name: e for e in listed if e.status != "destroyed"}
    for rec in previews:
        try:
            op_id = _unfinished_destroy(ws, envs.get(rec.env))
            if op_id is not None:
                report.resumed.append(rec.env)
                if not dry_run:
                    from envplane.lifecycle import destroy

                    destroy(ws, rec.env, force=True, resume_id=op_id)
                    ws.store.end_preview(rec.env)
            elif rec.seconds_left(at) <= 0:
                report.expired.append(rec.env)
                if not dry_run:
                    from envplane.previews.manage import destroy_preview

                    ws.progress(f"{rec.env}: expired at {rec.expires_at:%Y-%m-%d %H:%M} UTC")
                    destroy_preview(ws, rec.env)
            elif (
                sleeper is not None
                and sleeper.may_be_idle(rec, at)
                and sleeper.is_idle(ws, rec, at)
            ):
                idle.append(rec.env)
        except EnvplaneError as exc:  # one preview's failure does not stop the others
            report.failed[rec.env] = exc.message
    for env in idle:
        report.put_to_sleep.append(env)
        if sleeper is not None and not dry_run:
            try:
                sleeper.put_to_sleep(ws, env)
            except EnvplaneError as exc:
                report.failed[env] = exc.message
    # Orphans are judged on the environments as they are now: read again after this pass
    # changed any, and before removing orphans; a pass that only lists them reuses its list.
    changed = bool(report.resumed or report.expired or report.put_to_sleep)
    fresh = not dry_run and (changed or orphans)
    report.orphans = find_orphans(ws, None if fresh else listed)
    if orphans and not dry_run:
        for orphan in report.orphans:
            left = remove_orphan(ws, orphan)
            if left:
                report.orphans_left[orphan.name] = left
            else:
                report.orphans_removed.append(orphan.name)
    report.seconds = time.monotonic() - started
    return report


def gc_every(
    ws: Workspace,
    interval: float,
    stop: threading.Event,
    *,
    runs: int | None = None,
    each: Callable[[GcReport], None] | None = None,
    dry_run: bool = False,
    orphans: bool = False,
    sleeper: Sleeper | None = None,
) -> int:
    """gc every `interval` seconds until `stop` is set (SIGTERM) or `runs` passes were made;
    the number of passes. A pass that raises is reported by the next line of `each` and the
    loop goes on: a reaper that dies on one bad night reaps nothing after it."""
    done = 0
    while not stop.is_set() and (runs is None or done < runs):
        try:
            report = gc(ws, dry_run=dry_run, orphans=orphans, sleeper=sleeper)
        except EnvplaneError as exc:
            report = GcReport(dry_run, failed={"gc": exc.message})
        done += 1
        if each is not None:
            each(report)
        if runs is not None and done >= runs:
            break
        stop.wait(interval)
    return done
