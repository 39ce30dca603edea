"""The matrix's preview quotas: how many at once (per project, per creator), and what the
previews may cost together per month. A create beyond one is Blocked (exit 3), naming the
quota and what uses it, before anything is recorded.

Pull requests opened together start their CI jobs together: two `preview create`s checking
at once would each see room for one more. So the check and the recording of the new preview
happen under `admission`, one store-wide lock (in the store, so it holds across machines
sharing a PostgreSQL store; a holder that died is taken over, as an environment's lock is)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from typing import Any

from envplane.errors import Blocked, LockHeld
from envplane.previews.spec import rate_of, spec_of
from envplane.state.base import now
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace

ADMISSION_LOCK = "previews"  # a store-wide lock's name: no environment's (state/locking.py)
ADMISSION_WAIT = 30.0  # seconds: each holder only counts and records (ms), or prices (< 1 s)
# From a preview's record to its environment's: a create's first steps. Longer, and the create
# died (a recorded preview still counts until then: a quota errs on the side of holding).
CREATING = timedelta(minutes=10)


@contextmanager
def admission(ws: Workspace) -> Iterator[None]:
    """Hold the store-wide lock of preview admissions: one check-and-record at a time."""
    op_id = ws.store.new_operation_id()
    deadline = time.monotonic() + ADMISSION_WAIT
    while True:
        try:
            ws.store.acquire_named_lock(ADMISSION_LOCK, op_id)
            break
        except LockHeld as held:
            if time.monotonic() >= deadline:
                raise Blocked(
                    f"another preview create has been checking the quotas for over "
                    f"{ADMISSION_WAIT:.0f} s: {held.holder}",
                    hint="retry; if that process is stuck, stop it",
                ) from None
            time.sleep(0.05)
    try:
        yield
    finally:
        ws.store.release_named_lock(ADMISSION_LOCK, op_id)


def live_previews(ws: Workspace) -> list[PreviewRecord]:
    """Previews whose environment is still there, or is being created (recorded a moment ago:
    `preview create` records the preview first, under `admission`). One destroyed by a plain
    `destroy`, or whose create died before its environment was recorded, is closed here, so it
    stops counting."""
    out = []
    at = now()
    # One query, not one a preview; destroyed ones too: "destroyed" and "not yet" differ.
    envs = {e.name: e for e in ws.store.list_environments(include_destroyed=True)}
    for rec in ws.store.previews():
        env = envs.get(rec.env)
        gone = env.status == "destroyed" if env is not None else at - rec.created_at > CREATING
        if gone:
            ws.store.end_preview(rec.env)
            continue
        out.append(rec)
    return out


def _where(ws: Workspace, key: str) -> str:
    line = ws.matrix.line_of(("previews", "quotas", key))
    return f" ({ws.matrix.path}:{line})" if line else ""


def check_quotas(ws: Workspace, new_env: str, definition: Mapping[str, Any]) -> None:
    """Refuse creating the preview `new_env` if a quota would be passed."""
    quotas = spec_of(ws).quotas
    others = [p for p in live_previews(ws) if p.env != new_env]
    hint = "destroy one (`envplane preview destroy NAME`) or raise the quota in the matrix"
    if quotas.max_previews is not None and len(others) >= quotas.max_previews:
        raise Blocked(
            f"quota previews.quotas.max_previews{_where(ws, 'max_previews')} reached: "
            f"{len(others)} of {quotas.max_previews} previews exist: "
            + ", ".join(f"{p.env} ({p.creator})" for p in others),
            hint=hint,
        )
    mine = [p for p in others if p.creator == ws.store.actor]
    if quotas.max_per_creator is not None and len(mine) >= quotas.max_per_creator:
        raise Blocked(
            f"quota previews.quotas.max_per_creator{_where(ws, 'max_per_creator')} reached: "
            f"{ws.store.actor} has {len(mine)} of {quotas.max_per_creator} previews: "
            + ", ".join(p.env for p in mine),
            hint=hint,
        )
    if quotas.monthly_cost_limit is not None:
        _check_cost(ws, new_env, definition, others, quotas.monthly_cost_limit, hint)


def _check_cost(
    ws: Workspace,
    new_env: str,
    definition: Mapping[str, Any],
    others: list[PreviewRecord],
    limit: Decimal,
    hint: str,
) -> None:
    used: list[tuple[str, Decimal]] = []
    for p in others:
        rate = rate_of(ws, p.env)
        used.append((p.env, rate.monthly if rate else Decimal(0)))
    rate = rate_of(ws, new_env, definition)
    new_cost = rate.monthly if rate else Decimal(0)
    total = sum((c for _, c in used), Decimal(0)) + new_cost
    if total > limit:
        uses = ", ".join(f"{env} ${cost:,.2f}" for env, cost in used) or "no other preview"
        raise Blocked(
            f"quota previews.quotas.monthly_cost_limit{_where(ws, 'monthly_cost_limit')} "
            f"(${limit:,.2f} a month) would be passed: {new_env} costs ${new_cost:,.2f} a "
            f"month and the previews up now cost ${total - new_cost:,.2f} ({uses})",
            hint=hint,
        )
