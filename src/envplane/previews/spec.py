"""What every preview command reads: the matrix's `previews:` block (or its defaults), the
lifetime asked for, a preview's URL and its price per hour."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from envplane.errors import BadInput, EnvplaneError
from envplane.matrix.models_previews import PreviewsSpec, lifetime_seconds
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace


def spec_of(ws: Workspace) -> PreviewsSpec:
    return ws.matrix.spec.previews or PreviewsSpec()


def parse_ttl(value: str | None, default: float, *, what: str = "--ttl") -> float:
    """Seconds of `value` (`30s`, `90m`, `48h`, `14d`), or `default` when not given."""
    if value is None:
        return default
    try:
        return lifetime_seconds(value)
    except ValueError as exc:
        raise BadInput(
            f"invalid {what} {value!r}: {exc}", hint=f"for example {what} 30m (s, m, h or d)"
        ) from None


def capped_expiry(
    ws: Workspace, created: datetime, wanted: datetime, *, asked: str | None
) -> datetime:
    """`wanted`, when it is within `max_ttl` of the preview's creation; bad input otherwise
    (nothing is changed: a CI job asking too much should hear it, not be cut silently)."""
    spec = spec_of(ws)
    limit = created + timedelta(seconds=spec.max_ttl)
    if wanted > limit + timedelta(seconds=1):
        where = ws.matrix.line_of(("previews", "max_ttl"))
        located = f" ({ws.matrix.path}:{where})" if where else ""
        raise BadInput(
            f"a preview lives at most {human(spec.max_ttl)} from its creation (previews.max_ttl"
            f"{located}); {asked or 'that'} would end it at {wanted:%Y-%m-%d %H:%M} UTC, "
            f"after {limit:%Y-%m-%d %H:%M} UTC",
            hint="ask for less, or raise previews.max_ttl in the matrix",
        )
    return wanted


def human(seconds: float) -> str:
    s = int(seconds)
    if s % 86400 == 0 and s >= 86400:
        return f"{s // 86400}d"
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600}h"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60}m"
    return f"{s}s"


def url_of(ws: Workspace, env: str) -> str | None:
    """The preview's front door (the frontend endpoint), or None when it has none."""
    # desired and cost are imported where used: gc imports this module (through quotas)
    # on every pass and needs neither.
    from envplane.desired import desired_from_record, project_of

    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        return None
    target = ws.target(record.target or "local")
    ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
    for endpoint in target.endpoints(ctx, desired_from_record(ws, record)):
        if endpoint.name == "frontend":
            return endpoint.url
    return None


@dataclass(frozen=True)
class Rate:
    """What a preview costs: per hour awake, per hour asleep (storage only)."""

    hourly: Decimal
    asleep_hourly: Decimal
    monthly: Decimal

    def so_far(self, record: PreviewRecord, at: datetime) -> Decimal:
        lived = max(0.0, ((record.ended_at or at) - record.created_at).total_seconds())
        awake = min(record.awake_so_far(at), lived)
        hours_awake = Decimal(str(awake / 3600))
        hours_asleep = Decimal(str((lived - awake) / 3600))
        return (hours_awake * self.hourly + hours_asleep * self.asleep_hourly).quantize(
            Decimal("0.01")
        )


def rate_of(ws: Workspace, env: str, definition: Mapping[str, Any] | None = None) -> Rate | None:
    """Its price at the cost table's list prices, or None when it cannot be priced (no
    matrix entry it derives from, a broken matrix): shown as unknown, never as $0."""
    from envplane.cost import HOURS_PER_MONTH, estimate
    from envplane.desired import matrix_for

    with contextlib.suppress(EnvplaneError):
        est = estimate(matrix_for(ws, env, definition), env)
        return Rate(
            hourly=est.hourly,
            asleep_hourly=(est.storage_monthly / HOURS_PER_MONTH).quantize(Decimal("0.0001")),
            monthly=est.monthly,
        )
    return None
