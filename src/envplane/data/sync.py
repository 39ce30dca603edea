"""sync SRC DST --type config|data|both.

config: DST renders SRC's config template with DST's own names, ports and endpoints, and its
services reload (an update of DST; the template choice is recorded, so later updates keep it).
On the cloud target that update server-side applies the rendered ConfigMaps into DST's
namespace and restarts, as a rollout, the Deployments that read a changed one
(targets/cloud/configsync.py). SRC and DST must be on the same target.
data: DST's database, keys and objects are replaced by SRC's (masked when they leave an
approval-gated environment). Syncing data into an approval-gated environment needs --force.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from envplane.data import masking, transfer
from envplane.data.envs import existing
from envplane.desired import matrix_for
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput
from envplane.lifecycle import approval, update
from envplane.plan.model import Plan
from envplane.workspace import Workspace

SYNC_TYPES = ("config", "data", "both")


@dataclass
class SyncOutcome:
    source: str
    target: str
    sync_type: str
    config: Outcome | None = None
    data_facts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    masking: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    applied: bool = False


def effective_template(ws: Workspace, env: str) -> str:
    record = ws.store.get_environment(env)
    if record is not None and record.template:
        return record.template
    return matrix_for(ws, env).environment(env).template


def sync(
    ws: Workspace,
    src: str,
    dst: str,
    *,
    sync_type: str,
    dry_run: bool = False,
    force: bool = False,
    unmasked: bool = False,
    show_plan: Callable[[Plan], None] | None = None,
    show: Callable[[SyncOutcome], None] | None = None,
) -> SyncOutcome:
    """Plan (the config diff, the data to replace), call `show`, then act unless `dry_run`."""
    if sync_type not in SYNC_TYPES:
        raise BadInput(f"invalid sync type {sync_type!r}: use one of {', '.join(SYNC_TYPES)}")
    source = existing(ws, src, role="source environment")
    target = existing(ws, dst, role="target environment")
    if src == dst:
        raise BadInput("source and target are the same environment")
    src_target, dst_target = source.record.target or "local", target.record.target or "local"
    if src_target != dst_target:
        # A local environment's files and processes and a cloud one's ConfigMaps, RDS and
        # S3 are not copies of each other: nothing here could move between them faithfully.
        raise BadInput(
            f"cannot sync {src} ({src_target} target) into {dst} ({dst_target} target): "
            "configuration and data move only between environments of the same target",
            hint=f"sync {dst} from an environment on the {dst_target} target",
        )
    data = sync_type in ("data", "both")
    mask_plan = None
    if data:
        mask_plan = transfer.check_rules(source, masking.decide(ws, src, dst, unmasked=unmasked))
    outcome = SyncOutcome(src, dst, sync_type)
    if mask_plan is not None:
        outcome.masking = mask_plan.describe()
    if sync_type in ("config", "both"):
        template = effective_template(ws, src)
        outcome.config = update(ws, dst, template=template, dry_run=True, show_plan=show_plan)
    if data:
        for env in (source, target):
            outcome.data_facts[env.name] = {
                r.kind: env.data.data_facts(env.ctx, r) for r in env.data_resources
            }
    if show is not None:
        show(outcome)
    if dry_run:
        return outcome
    if data:
        again = f"envplane sync {src} {dst} --type {sync_type}"
        approval.guard(ws, dst, doing="replacing its data", force=force, again=again)
    if sync_type in ("config", "both"):
        outcome.config = update(ws, dst, template=effective_template(ws, src))
        if outcome.config.operation_id:
            outcome.operations.append(outcome.config.operation_id)
    if data:
        # The copies are made (inside the journaled operation, SRC under its shared lock)
        # before DST's services stop: DST's downtime is the swap alone.
        op_id, lines, _seconds = transfer.run(
            ws, "sync", src, dst, unmasked=unmasked, copy_early=True
        )
        outcome.operations.append(op_id)
        outcome.masking = lines or outcome.masking
    outcome.applied = True
    return outcome
