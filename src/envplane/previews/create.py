"""preview create: the per-branch environment, derived from `previews.from` (a clone of its
matrix entry, with its data when asked), recorded as a preview with an expiry.

The same branch always names the same environment, so a second create for a branch is an
update of its preview: the environment converges on the matrix as it is now, and the expiry
moves to now + ttl when that is later (a push keeps a preview alive; it never shortens one).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from envplane.data import clone
from envplane.errors import BadInput
from envplane.lifecycle import create, update
from envplane.plan.model import Plan
from envplane.previews.naming import preview_name
from envplane.previews.quotas import admission, check_quotas
from envplane.previews.spec import Rate, capped_expiry, parse_ttl, rate_of, spec_of, url_of
from envplane.state.base import now
from envplane.state.previews import PreviewRecord
from envplane.workspace import Workspace


@dataclass
class PreviewOutcome:
    record: PreviewRecord
    created: bool  # False: the branch's preview existed and was updated
    url: str | None
    rate: Rate | None
    masking: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _source(ws: Workspace, given: str | None) -> str:
    if given is not None:
        ws.matrix.environment(given)  # unknown: a did-you-mean
        return given
    src = spec_of(ws).source
    if src not in ws.matrix.environments:
        raise ws.matrix.error_at(
            ("previews", "from"),
            f"previews.from names {src!r}, which is not an environment of the matrix",
            hint="name one of: " + ", ".join(ws.matrix.environments),
        )
    return src


def create_preview(
    ws: Workspace,
    branch: str,
    *,
    source: str | None = None,
    ttl: str | None = None,
    with_data: bool = False,
    show_plan: Callable[[Plan], None] | None = None,
) -> PreviewOutcome:
    started = time.monotonic()
    spec = spec_of(ws)
    name = preview_name(branch, spec.prefix)
    src = _source(ws, source)
    if name in ws.matrix.environments:
        raise BadInput(
            f"branch {branch!r} names {name!r}, an environment of the matrix",
            hint="set another previews.prefix in the matrix",
        )
    seconds = parse_ttl(ttl, spec.ttl)
    at = now()
    previous = ws.store.get_preview(name)
    env = ws.store.get_environment(name)
    env_live = env is not None and env.status != "destroyed"
    if previous is not None and previous.ended_at is None and env_live:
        return _update(ws, previous, branch, src, seconds, ttl, with_data, show_plan, started)
    if env_live:
        raise BadInput(
            f"environment {name!r} exists and is not a preview",
            hint=f"destroy it (`envplane destroy {name}`) or set another previews.prefix",
        )
    expires = capped_expiry(ws, at, at + timedelta(seconds=seconds), asked=ttl and f"--ttl {ttl}")
    definition: dict[str, Any] = {"extends": src, "overrides": {}}
    with admission(ws):  # checked and recorded as one: creates running at once count each other
        check_quotas(ws, name, definition)
        record = ws.store.record_preview(name, branch=branch, source=src, expires_at=expires)
    outcome = PreviewOutcome(record, True, None, None)
    try:
        if with_data:
            done = clone(ws, src, name, with_data=True, show_plan=show_plan)
            outcome.masking, outcome.operations = done.masking, done.operations
        else:
            source_record = ws.store.get_environment(src)
            live_source = source_record is not None and source_record.status != "destroyed"
            created = create(
                ws,
                name,
                definition=definition,
                template=source_record.template if live_source and source_record else None,
                target=(source_record.target if live_source and source_record else None) or "local",
                show_plan=show_plan,
            )
            outcome.operations.append(str(created.operation_id))
    except BaseException:
        if ws.store.get_environment(name) is None:
            ws.store.drop_preview(name)  # refused before anything was made
        raise
    ws.store.audit(
        name, "preview", f"branch {branch!r} from {src}, expires {expires:%Y-%m-%d %H:%M}"
    )
    return _finish(ws, outcome, started)


def _update(
    ws: Workspace,
    previous: PreviewRecord,
    branch: str,
    src: str,
    seconds: float,
    ttl: str | None,
    with_data: bool,
    show_plan: Callable[[Plan], None] | None,
    started: float,
) -> PreviewOutcome:
    name = previous.env
    if previous.branch != branch:
        raise BadInput(
            f"preview {name!r} belongs to branch {previous.branch!r}, not {branch!r}",
            hint=f"destroy it first (`envplane preview destroy {name}`) or set another prefix",
        )
    if previous.source != src:
        raise BadInput(
            f"preview {name!r} is derived from {previous.source!r}, not {src!r}",
            hint=f"destroy it first: envplane preview destroy {name}",
        )
    wanted = now() + timedelta(seconds=seconds)
    expires = None
    if wanted > previous.expires_at:  # checked first: a refused ttl changes nothing
        expires = capped_expiry(ws, previous.created_at, wanted, asked=ttl and f"--ttl {ttl}")
    outcome = PreviewOutcome(previous, False, None, None)
    if previous.state == "asleep":
        outcome.messages.append(f"{name} is asleep: `envplane wake {name}` brings it back")
    else:
        done = update(ws, name, show_plan=show_plan)
        if done.operation_id:
            outcome.operations.append(str(done.operation_id))
    if with_data:
        outcome.messages.append("its data was not copied again (a preview's data is its own)")
    if expires is not None:
        outcome.record = ws.store.set_preview_expiry(name, expires)
    return _finish(ws, outcome, started)


def _finish(ws: Workspace, outcome: PreviewOutcome, started: float) -> PreviewOutcome:
    name = outcome.record.env
    outcome.url = url_of(ws, name)
    outcome.rate = rate_of(ws, name)
    outcome.record = ws.store.get_preview(name) or outcome.record
    outcome.seconds = time.monotonic() - started
    return outcome
