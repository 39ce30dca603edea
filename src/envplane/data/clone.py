"""clone SRC DST: a new environment with SRC's configuration under DST's own name, ports,
secrets and directories; with data, SRC's database, keys and objects copied in (masked when
they leave an approval-gated environment). SRC stays online and unchanged.

DST is derived structurally - the matrix entry `extends: SRC` under the name DST, recorded in
the store - so every name and endpoint is rendered for DST; nothing is text-substituted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from envplane.data import masking, transfer
from envplane.data.envs import existing
from envplane.engine import registry
from envplane.engine.operation import reading
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput
from envplane.lifecycle import create
from envplane.names import check_env_name
from envplane.plan.model import Plan
from envplane.targets.datacaps import DATA_KINDS
from envplane.workspace import Workspace


@dataclass
class CloneOutcome:
    source: str
    target: str
    with_data: bool
    create: Outcome
    masking: list[str] = field(default_factory=list)  # planned (dry run) or done
    data_facts: dict[str, dict[str, int]] = field(default_factory=dict)
    operations: list[str] = field(default_factory=list)
    applied: bool = False
    seconds: float = 0.0
    data_seconds: float = 0.0


def definition_for(ws: Workspace, src: str) -> dict[str, Any]:
    """How DST is derived from SRC: SRC's matrix entry, or SRC's own derivation if SRC is
    itself a clone (the matrix entry it extends, with its overrides)."""
    if src in ws.matrix.environments:
        return {"extends": src, "overrides": {}}
    record = ws.store.get_environment(src)
    if record is None or not record.definition:
        raise BadInput(f"source environment {src!r} is neither in the matrix nor a recorded clone")
    return dict(record.definition)


def _check_target(ws: Workspace, dst: str) -> None:
    check_env_name(dst, what="target environment name")
    if dst in ws.matrix.environments:
        raise BadInput(
            f"target environment {dst!r} is defined in the matrix; clone into a new name",
            hint=f"to copy into it, create it and use `envplane sync SRC {dst}`",
        )
    record = ws.store.get_environment(dst)
    if record is not None and record.status != "destroyed":
        raise BadInput(
            f"target environment {dst!r} already exists ({record.status})",
            hint=f"pick another name, or `envplane sync SRC {dst}` to copy into it",
        )


def clone(
    ws: Workspace,
    src: str,
    dst: str,
    *,
    with_data: bool = False,
    unmasked: bool = False,
    dry_run: bool = False,
    show_plan: Callable[[Plan], None] | None = None,
    show: Callable[[CloneOutcome], None] | None = None,
) -> CloneOutcome:
    """Plan, call `show` with the planned outcome (what will be created, copied, masked),
    then act unless `dry_run`."""
    started = time.monotonic()
    source = existing(ws, src, role="source environment")
    _check_target(ws, dst)
    if src == dst:
        raise BadInput("source and target are the same environment")
    definition = definition_for(ws, src)
    target = source.record.target or "local"  # DST is made on SRC's target
    mask_plan = None
    if with_data:
        rules = masking.decide(ws, src, dst, unmasked=unmasked)
        mask_plan = transfer.check_rules(source, rules)
    with ExitStack() as held:
        lock_id = None
        if with_data and not dry_run:
            # SRC is read until its data is in DST: nothing may change or destroy it meanwhile
            # (a shared lock under the id of DST's create, which the copies feed).
            lock_id = ws.store.new_operation_id()
            held.enter_context(reading(ws.store, src, lock_id))
            source = existing(ws, src, role="source environment")  # still there, locked
        # Masked, the database's copy is masked while it is staged (DataTarget.mask_copy), so
        # DST's cluster is created from masked data and nothing of DST ever reads an original.
        mask = (mask_plan, masking.salt(ws, src)) if mask_plan and not dry_run else None
        with ThreadPoolExecutor(max_workers=len(DATA_KINDS)) as pool:
            # The copies (the slow part) start now, while the rest is planned and DST created.
            early = (
                transfer.EarlyCopies(ws, source, dst, pool, mask)
                if with_data and not dry_run
                else None
            )
            try:
                planned = create(
                    ws, dst, definition=definition, template=source.record.template, dry_run=True,
                    show_plan=show_plan, target=target,
                )  # fmt: skip
                outcome = CloneOutcome(src, dst, with_data, planned)
                if mask_plan is not None:
                    outcome.masking = mask_plan.describe()
                if with_data:
                    for res in source.data_resources:
                        outcome.data_facts[res.kind] = source.data.data_facts(source.ctx, res)
                if show is not None:
                    show(outcome)
                if dry_run:
                    return outcome
                ws.progress(f"creating {dst} from {src}'s configuration")
                # DST's data resources are created from the copies of SRC's (EnvContext.seeds),
                # the database's masked already when it must be: its services start once, on
                # that data. A copy that could not be made (or masked) early: the data is copied
                # (and masked) by a data operation after the create, its services stopped.
                seeded = early is not None
                seeds = {r.kind: early.seed(r.kind) for r in source.data_resources} if early else {}
                # Until the data is copied the record says so: `resume` of an interrupted create
                # then goes on with the copy.
                pending = {"source": src, "unmasked": unmasked} if with_data else None
                recorded = {**definition, "pending_data": pending} if pending else definition
                created = create(
                    ws,
                    dst,
                    definition=recorded,
                    template=source.record.template,
                    seeds=seeds if seeded else None,
                    op_id=lock_id,
                    target=target,
                )
            except BaseException:
                if early is not None:
                    early.discard()
                raise
        outcome.create = created
        outcome.operations.append(str(created.operation_id))
        if early is not None:
            prepared = early.tokens()
            try:
                if seeded and len(prepared) == len(source.data_resources):
                    outcome.data_seconds = early.seconds()
                    how = "masked" if mask_plan else "as is"
                    ws.store.audit(dst, "data-clone", f"data copied from {src} ({how}, at create)")
                    if mask_plan is not None:
                        outcome.masking = early.masking
                else:
                    # The seeds took the copies made: the data operation copies all again.
                    ws.progress(f"copying data {src} -> {dst} ({src} stays online)")
                    op_id, lines, seconds = transfer.run(ws, "clone", src, dst, unmasked=unmasked)
                    outcome.operations.append(op_id)
                    outcome.data_seconds = seconds
                    if lines:
                        outcome.masking = lines
            finally:
                early.discard()
            ws.store.save_environment(dst, definition=definition)  # no longer pending
        ws.store.audit(dst, "cloned", f"from {src}" + (" with data" if with_data else ""))
        outcome.applied = True
        outcome.seconds = time.monotonic() - started
        return outcome


def finish_pending_clone(ws: Workspace, env: str) -> str | None:
    """After a resumed create: the data copy of a clone whose create was interrupted (the
    record's definition says it is pending)."""
    record = ws.store.get_environment(env)
    definition = dict(record.definition or {}) if record else {}
    pending = definition.pop("pending_data", None)
    if not isinstance(pending, dict):
        return None
    source = str(pending.get("source"))
    op_id, _lines, _seconds = transfer.run(
        ws, "clone", source, env, unmasked=bool(pending.get("unmasked"))
    )
    ws.store.save_environment(env, definition=definition)
    return f"data copied from {source} (operation {op_id})"


registry.after_resume("create", finish_pending_clone)
