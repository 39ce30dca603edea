"""restore ENV BACKUP_ID: verify every component, then replace the environment's data.

Order: check the arguments; verify each component's size and sha256 (decrypting into a private
staging directory) - a damaged backup is refused here, with nothing touched; recreate the
environment if it was destroyed; then one journaled operation: stop the services, mark the
environment failed (half-restored data is not usable), restore each component, start the
services, mark it ready. Killed midway, `envplane resume OP` runs the remaining steps.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from envplane.data import catalog, crypto, masking
from envplane.data.documents import RestorePlan
from envplane.data.envs import existing, known, refresh, restart_services
from envplane.data.files import discard, new_staging, stage
from envplane.data.manifest import Manifest
from envplane.desired import project_of
from envplane.engine import registry
from envplane.engine import steps as engine_steps
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, UnknownEnvironment
from envplane.lifecycle import approval, create, update
from envplane.names import check_env_name
from envplane.plan.model import Plan
from envplane.targets.datacaps import DATA_KINDS, ExportFormat, Unpacker
from envplane.targets.registry import get_data_target
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord


@dataclass
class RestoreOutcome:
    environment: str
    backup_id: str
    source_environment: str
    recreate: bool
    steps: list[str]
    components: list[str]
    notes: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)
    applied: bool = False
    seconds: float = 0.0


def _check_source(env: str, manifest: Manifest, from_env: str | None) -> None:
    source = manifest.source_environment
    if from_env is not None:
        check_env_name(from_env, what="--from-env environment name")
        if from_env != source:
            raise BadInput(
                f"backup {manifest.backup_id} is of environment {source!r}, not {from_env!r}"
            )
    elif source != env:
        raise BadInput(
            f"backup {manifest.backup_id} is of environment {source!r}, not {env!r}",
            hint=f"to restore it into {env!r} anyway: --from-env {source}",
        )


def _data_components(manifest: Manifest) -> list[str]:
    return [k for k in DATA_KINDS if manifest.component(k)]


def _export_of(manifest: Manifest, kind: str) -> ExportFormat:
    comp = manifest.component(kind)
    assert comp is not None
    return ExportFormat(comp.format, dict(comp.details))


def restore(
    ws: Workspace,
    env: str,
    backup_id: str,
    *,
    from_env: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    unmasked: bool = False,
    show: Callable[[RestoreOutcome], None] | None = None,
    confirm: Callable[[RestoreOutcome], bool] | None = None,
) -> RestoreOutcome:
    """Plan, call `show` with the planned outcome, then restore unless `dry_run`. Replacing
    an existing environment's data needs `force`, or `confirm` (asked with the plan) to agree."""
    started = time.monotonic()
    check_env_name(env)
    folder, manifest = catalog.find(ws, backup_id)
    _check_source(env, manifest, from_env)
    record = ws.store.get_environment(env)
    exists = record is not None and record.status != "destroyed"
    if record is None and env not in ws.matrix.environments:
        known(ws, env)  # raises UnknownEnvironment with a did-you-mean
        raise UnknownEnvironment(f"unknown environment {env!r}")
    data = _data_components(manifest)
    target = (record.target if exists and record else None) or manifest.target
    if data and target != manifest.target:
        raise BadInput(
            f"backup {backup_id} holds the data of a {manifest.target} environment; {env!r} "
            f"is a {target} environment",
            hint="restore it into an environment of the target it was made on",
        )
    driver = get_data_target(target)
    for kind in data:  # a format this machine cannot import is refused before anything changes
        driver.check_import(kind, _export_of(manifest, kind))
    if not data and exists and record is not None and record.status != "ready":
        raise BadInput(
            f"backup {backup_id} holds no data, only configuration: restoring it would not "
            f"repair {env!r} ({record.status})",
            hint=f"finish {env} first (envplane resume {record.last_operation_id}), or restore "
            "a backup with data",
        )
    if data and manifest.source_environment != env:
        masking.decide(ws, manifest.source_environment, env, unmasked=unmasked)
    planned = ["verify"] + ([] if exists else [f"create {env}"])
    if data:
        planned += ["stop services", *(f"restore {k}" for k in data), "start services"]
    if manifest.component("config"):
        planned.append("restore configuration")
    outcome = RestoreOutcome(
        env,
        backup_id,
        manifest.source_environment,
        not exists,
        planned,
        [c.name for c in manifest.components],
    )
    if show is not None:
        show(outcome)
    if dry_run:
        return outcome
    if exists and data:
        again = f"envplane restore {env} {backup_id}" + (
            f" --from-env {from_env}" if from_env else ""
        )
        approval.guard(ws, env, doing="replacing its data", force=force, again=again)
    if exists and not force and confirm is not None and not confirm(outcome):
        raise BadInput("confirmation did not match; nothing was restored", hint="or pass --force")
    if exists and not force and confirm is None:
        raise BadInput(
            f"restoring {backup_id} replaces the data of the existing environment {env!r}",
            hint="confirm by typing its name when asked, or pass --force",
        )
    staging = new_staging(ws.settings.home, f"restore-{backup_id}-{os.getpid()}")
    plain: dict[str, Path] = {}
    try:
        ws.progress(f"verifying {len(manifest.components)} component(s) of {backup_id}")
        plain = _verify(ws, env, folder, manifest, staging)
        if not exists:
            ws.progress(f"{env} does not exist: creating it first")
            created = create(ws, env, target=target)
            outcome.operations.append(str(created.operation_id))
        if data:
            op_id = _run(ws, env, manifest, plain, from_env=from_env, unmasked=unmasked)
            outcome.operations.append(op_id)
        if "config" in plain:
            outcome.notes += _restore_config(ws, env, manifest, plain["config"], outcome)
    finally:
        discard(plain)
        shutil.rmtree(staging, ignore_errors=True)
    ws.store.audit(env, "restored", f"{backup_id} (from {manifest.source_environment})")
    outcome.applied = True
    outcome.seconds = time.monotonic() - started
    return outcome


def _verify(
    ws: Workspace, env: str, folder: Path, manifest: Manifest, staging: Path
) -> dict[str, Path]:
    """Check every component; those the driver can unpack ahead of the swap (a physical
    database copy) are unpacked aside as they are checked, for the data operation to swap in."""
    key = crypto.load_key(ws.settings.home, create=False) if manifest.encryption else None
    record = ws.store.get_environment(env)
    driver = get_data_target((record.target if record else None) or "local")
    ctx = ws.context(env, dict(record.ports or {}) if record else {}, project_of(ws))

    def unpacker(kind: str) -> Callable[[], Unpacker | None]:
        return lambda: driver.unpacker(ctx, kind, _export_of(manifest, kind))

    unpackers = {k: unpacker(k) for k in _data_components(manifest)}
    return stage(folder, manifest, staging, key, unpackers, events=ws.events)


def _run(
    ws: Workspace,
    env: str,
    manifest: Manifest,
    plain: dict[str, Path],
    *,
    from_env: str | None,
    unmasked: bool,
    resume_id: str | None = None,
) -> str:
    envdata = existing(ws, env)
    kinds = [k for k in _data_components(manifest) if envdata.resource(k)]
    source = manifest.source_environment
    rules = masking.decide(ws, source, env, unmasked=unmasked) if source != env else None

    def stop() -> None:
        envdata.data.stop_services(envdata.ctx)

    def importer(kind: str) -> engine_steps.Step:
        def work() -> None:
            res = envdata.resource(kind)
            assert res is not None
            ws.progress(f"restoring {kind}")
            envdata.data.import_data(envdata.ctx, res, plain[kind], _export_of(manifest, kind))

        return engine_steps.Step(f"{kind}/{kind}", "import", work)

    def mask() -> None:
        assert rules is not None
        pg = envdata.resource("postgres")
        assert pg is not None
        salt = masking.salt(ws, source)
        mask_plan = envdata.data.check_masking(envdata.ctx, pg, rules, source)
        envdata.data.apply_masking(envdata.ctx, pg, mask_plan, salt, ws.progress)

    def start() -> None:
        restart_services(refresh(ws, env))

    # The components restore side by side while the services stop (the new database keeps
    # the app out until it is complete); the services start once all of them are back.
    Step = engine_steps.Step
    stages = [[Step("data/stop-services", "stop", stop), *(importer(k) for k in kinds)]]
    stages += [[Step("data/mask", "mask", mask)]] if rules else []
    stages += [[Step("data/start-services", "start", start)]]
    todo = engine_steps.in_stages(stages)
    plan = RestorePlan(
        environment=env,
        backup_id=manifest.backup_id,
        from_env=from_env,
        unmasked=unmasked,
        steps=[step.key for step in todo],
    )
    with locked_operation(
        ws.store, env, "restore", plan.model_dump(), resume_id=resume_id, events=ws.events
    ) as op_id:
        # Failed until every component is back: half-restored data is not usable.
        ws.store.save_environment(env, status="failed", last_operation_id=op_id)
        skip = engine_steps.done_steps(ws.store, op_id) if resume_id else frozenset()
        engine_steps.run(ws.store, op_id, todo, skip=skip, events=ws.events)
        ws.store.save_environment(env, status="ready")
    return op_id


def _restore_config(
    ws: Workspace, env: str, manifest: Manifest, path: Path, outcome: RestoreOutcome
) -> list[str]:
    """The backup's template choice comes back (an update if it differs); differences between
    the backed-up and the now-rendered config files are reported, not hidden."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    record = ws.store.get_environment(env)
    template = (doc.get("record") or {}).get("template")
    if record is not None and isinstance(template, str) and template != record.template:
        done = update(ws, env, template=template)
        if done.operation_id:
            outcome.operations.append(done.operation_id)
    current = ws.store.resources(env).get("config/config")
    now_files = dict(current.spec.get("files", {})) if current else {}
    then_files = doc.get("config_files") or {}
    differ = sorted(k for k in {*now_files, *then_files} if now_files.get(k) != then_files.get(k))
    if not differ:
        return []
    return [
        f"rendered config differs from the backup's in {', '.join(differ[:8])}"
        + (" ..." if len(differ) > 8 else "")
        + " (names, ports or the matrix/templates changed since; the matrix is what applies)"
    ]


def resume_restore(ws: Workspace, op: OperationRecord, plan: RestorePlan) -> Outcome:
    """The remaining steps of a restore: the backup is verified (and unpacked) again first."""
    started = time.monotonic()
    folder, manifest = catalog.find(ws, plan.backup_id)
    staging = new_staging(ws.settings.home, f"restore-{plan.backup_id}-{os.getpid()}")
    plain: dict[str, Path] = {}
    try:
        plain = _verify(ws, op.env, folder, manifest, staging)
        _run(
            ws,
            op.env,
            manifest,
            plain,
            from_env=plan.from_env,
            unmasked=plan.unmasked,
            resume_id=op.id,
        )
    finally:
        discard(plain)
        shutil.rmtree(staging, ignore_errors=True)
    return Outcome(
        op.env,
        Plan(op.env, "local", "restore", ()),
        op.id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=[f"restore {op.id}: the remaining steps ran"],
    )


registry.register(
    registry.OperationKind(
        "restore", RestorePlan, resume_restore, "replace an environment's data with a backup's"
    )
)
