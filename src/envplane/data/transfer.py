"""Copy data between two live environments (clone --with-data, sync --type data), journaled as
one operation on the destination; masking runs in the destination's copy before its services
start again. The source keeps serving throughout: nothing of it is stopped."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from envplane.data import masking
from envplane.data.documents import TransferPlan
from envplane.data.envs import (
    EnvData,
    approval_required,
    existing,
    refresh,
    restart_services,
)
from envplane.engine import registry
from envplane.engine import steps as engine_steps
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, EnvplaneError, OperationFailed
from envplane.matrix.models import DataRules
from envplane.plan.model import Plan
from envplane.render.model import Resource
from envplane.targets.base import EnvContext
from envplane.targets.datacaps import DATA_KINDS, MaskingPlan
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord


class EarlyCopies:
    """SRC's data copied for DST in the background, one thread per kind, while DST is being
    created (clone) or still serving (sync); staged for copy_data or EnvContext.seeds. A copy
    that fails only loses the head start: copy_data then copies in the data operation.

    With `mask` (the plan and the salt), the postgres copy is masked while still staged, where
    the driver can (DataTarget.masks_copies); where it cannot, or the masking fails, no postgres
    copy is kept: every token handed out is masked."""

    def __init__(
        self,
        ws: Workspace,
        source: EnvData,
        dst: str,
        pool: ThreadPoolExecutor,
        mask: tuple[MaskingPlan, str] | None = None,
    ) -> None:
        ctx = ws.context(dst, {}, source.ctx.project)
        self._ws, self._source, self.mask = ws, source, mask
        self.masking: list[str] = []  # the lines of the staged copy's masking
        self._futures = {
            res.kind: pool.submit(self._copy, res, ctx) for res in source.data_resources
        }

    def _copy(self, res: Resource, ctx: EnvContext) -> tuple[Any, float]:
        started = time.monotonic()
        data = self._source.data
        try:
            token = data.prepare_copy(self._source.ctx, res, ctx)
        except EnvplaneError as exc:
            self._ws.progress(f"{res.kind}: no early copy ({exc.message}); copying after create")
            token = None
        if token is not None and self.mask is not None and res.kind == "postgres":
            plan, salt = self.mask
            try:
                if not data.masks_copies:
                    raise BadInput("this target masks in place, after the copy")
                self.masking = data.mask_copy(token, plan, salt, self._ws.progress)
            except BaseException as exc:
                data.discard_copy(token)
                if not isinstance(exc, EnvplaneError):
                    raise
                self._ws.progress(f"postgres: no early masked copy ({exc.message})")
                token = None
        return token, time.monotonic() - started

    def seed(self, kind: str) -> Callable[[], Any]:
        """An EnvContext.seeds entry: waits for this kind's copy (None if it failed)."""
        return lambda: self._futures[kind].result()[0]

    def tokens(self) -> dict[str, Any]:
        """Every copy made (waiting for those still running)."""
        done = {kind: future.result()[0] for kind, future in self._futures.items()}
        return {kind: token for kind, token in done.items() if token is not None}

    def seconds(self) -> float:
        """How long the copies took, side by side: the slowest one."""
        return max((f.result()[1] for f in self._futures.values()), default=0.0)

    def discard(self) -> None:
        for token in self.tokens().values():
            self._source.data.discard_copy(token)


def pairs(source: EnvData, target: EnvData) -> list[str]:
    """Data kinds both environments have, in the order they are copied."""
    return [k for k in DATA_KINDS if source.resource(k) and target.resource(k)]


def check_rules(source: EnvData, rules: DataRules | None) -> MaskingPlan | None:
    """Match the masking rules with the source's schema, read-only, before anything changes."""
    if rules is None:
        return None
    pg = source.resource("postgres")
    if pg is None:
        if rules.masking or rules.subset:
            raise BadInput(
                f"{source.name!r} has no database, but its matrix declares masking rules"
            )
        return None
    return source.data.check_masking(source.ctx, pg, rules, source.name)


def run(
    ws: Workspace,
    kind: str,
    src: str,
    dst: str,
    *,
    unmasked: bool,
    resume_id: str | None = None,
    op_id: str | None = None,
    copy_early: bool = False,
) -> tuple[str, list[str], float]:
    """Copy src's data into dst under one journaled operation, reading src under a shared
    lock; (op id, masking lines, seconds). `op_id`: an id chosen in advance (the caller holds
    src's shared lock under it already). `copy_early`: make SRC's copies first, inside the
    operation, while DST still serves (a sync), so the operation is journaled from the first
    byte copied.

    Masked, the database's copy is masked while staged, before it replaces dst's (where the
    driver can: DataTarget.masks_copies), so dst never holds an original value; the mask step
    then has nothing left to do. Elsewhere the mask step masks dst's copy in place, its
    services stopped."""
    started = time.monotonic()
    source, target = existing(ws, src), existing(ws, dst)
    rules = masking.decide(ws, src, dst, unmasked=unmasked)
    mask_plan = check_rules(source, rules)
    in_copy = mask_plan is not None and source.data.masks_copies and target.data.masks_copies
    kinds = pairs(source, target)
    lines: list[str] = []
    prepared: dict[str, Any] = {}  # copies made early (copy_early), each used once

    def stop() -> None:
        stopped = target.data.stop_services(target.ctx)
        ws.progress(f"{dst}: stopped {', '.join(stopped) or 'no services'}")

    def masked_copy(src_res: Resource) -> Any:
        assert mask_plan is not None
        token = source.data.prepare_copy(source.ctx, src_res, target.ctx)
        if token is None:
            raise OperationFailed(f"{src}'s database could not be copied to be masked")
        try:
            salt = masking.salt(ws, src)
            lines.extend(source.data.mask_copy(token, mask_plan, salt, ws.progress))
        except BaseException:
            source.data.discard_copy(token)
            raise
        return token

    def copier(k: str) -> engine_steps.Step:
        def work() -> None:
            src_res, dst_res = source.resource(k), target.resource(k)
            assert src_res is not None and dst_res is not None
            token = prepared.pop(k, None)
            if in_copy and k == "postgres" and token is None:
                token = masked_copy(src_res)
            target.data.copy_data(source.ctx, src_res, target.ctx, dst_res, token)

        return engine_steps.Step(f"{k}/{k}", "copy", work)

    def mask() -> None:
        assert mask_plan is not None
        if in_copy:
            return  # masked while staged, in the copy step
        pg = target.resource("postgres")
        assert pg is not None
        salt = masking.salt(ws, src)
        lines.extend(target.data.apply_masking(target.ctx, pg, mask_plan, salt, ws.progress))

    def start() -> None:
        restart_services(refresh(ws, dst))

    Step = engine_steps.Step
    stages = [[Step("data/stop-services", "stop", stop)], [copier(k) for k in kinds]]
    stages += [[Step("data/mask", "mask", mask)]] if mask_plan is not None else []
    stages += [[Step("data/start-services", "start", start)]]
    todo = engine_steps.in_stages(stages)
    plan = TransferPlan(
        operation=kind,
        environment=dst,
        source=src,
        unmasked=unmasked,
        steps=[step.key for step in todo],
    )
    with locked_operation(
        ws.store,
        dst,
        kind,
        plan.model_dump(),
        resume_id=resume_id,
        op_id=op_id,
        reads=[src],
        events=ws.events,
    ) as op_id:
        # Failed until the copy is complete: half-copied data is not usable.
        ws.store.save_environment(dst, status="failed", last_operation_id=op_id)
        skip = engine_steps.done_steps(ws.store, op_id) if resume_id else frozenset()
        if copy_early and resume_id is None:
            ws.progress(f"copying {src}'s data ({src} stays online, {dst} keeps serving)")
            staged_mask = (mask_plan, masking.salt(ws, src)) if in_copy and mask_plan else None
            with ThreadPoolExecutor(max_workers=len(DATA_KINDS)) as pool:
                made = EarlyCopies(ws, source, dst, pool, staged_mask)
            prepared = made.tokens()
            lines.extend(made.masking if "postgres" in prepared else [])
            ws.progress(f"replacing {dst}'s data with the copies")
        try:
            engine_steps.run(ws.store, op_id, todo, skip=skip, events=ws.events)
        finally:
            for token in prepared.values():  # copies not used (a step failed first)
                source.data.discard_copy(token)
        ws.store.save_environment(dst, status="ready")
        forced = unmasked and approval_required(ws, src) and not approval_required(ws, dst)
        how = "masked" if mask_plan else "unmasked: --unmasked" if forced else "as is"
        ws.store.audit(dst, f"data-{kind}", f"data copied from {src} ({how})")
    return op_id, lines, time.monotonic() - started


def resume_transfer(ws: Workspace, op: OperationRecord, plan: TransferPlan) -> Outcome:
    """A clone's or sync's data copy, from its first step not done."""
    started = time.monotonic()
    run(ws, op.kind, plan.source, op.env, unmasked=plan.unmasked, resume_id=op.id)
    return Outcome(
        op.env,
        Plan(op.env, "local", op.kind, ()),
        op.id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=[f"{op.kind} {op.id}: the remaining steps ran"],
    )


for _kind, _summary in (
    ("clone", "copy an environment's data into its clone"),
    ("sync", "replace an environment's data with another's"),
):
    registry.register(registry.OperationKind(_kind, TransferPlan, resume_transfer, _summary))
