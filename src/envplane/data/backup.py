"""backup: a consistent copy of an environment's data and configuration, with a manifest.

Components are written in parallel (pg_dump, Redis BGSAVE and the object archive do not wait
for each other), each through a hashing and, when the environment has kms_encryption on,
encrypting writer. The manifest goes last, atomically; until it exists the backup is invisible.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envplane import __version__
from envplane.data import crypto, manifest
from envplane.data.documents import BackupOperationPlan
from envplane.data.envs import EnvData, encryption_on, existing
from envplane.data.files import ComponentWriter
from envplane.data.manifest import BACKUP_TYPES, Component, Manifest
from envplane.desired import matrix_for
from envplane.engine import registry
from envplane.engine import steps as engine_steps
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput
from envplane.plan.model import Plan
from envplane.targets.datacaps import ExportFormat, snapshot_data
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.events import EventSink
    from envplane.state.records import OperationRecord

FILES = {"config": "config.json", "postgres": "postgres.base.tar.lz4", "redis": "redis.rdb",
         "storage": "storage.tar"}  # fmt: skip
LOGICAL_FILES = {**FILES, "postgres": "postgres.dump"}
# A target with SnapshotData: the component is the descriptor of the service's own snapshot.
SNAPSHOT_FILES = {**FILES, "postgres": "postgres.snapshot.json", "redis": "redis.snapshot.json"}


@dataclass
class BackupPlan:
    environment: str
    backup_type: str
    components: list[str]
    encrypted: bool
    logical: bool = False
    facts: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class BackupResult:
    plan: BackupPlan
    manifest: Manifest | None = None
    path: Path | None = None
    seconds: float = 0.0
    operation_id: str | None = None


def check_type(backup_type: str) -> str:
    if backup_type not in BACKUP_TYPES:
        raise BadInput(f"invalid backup type {backup_type!r}: use one of {', '.join(BACKUP_TYPES)}")
    return backup_type


def plan_backup(
    ws: Workspace,
    env: str,
    backup_type: str = "full",
    *,
    logical: bool = False,
    measure: bool = True,
) -> BackupPlan:
    """What a backup of `env` will hold; with `measure`, the sizes of its data now."""
    check_type(backup_type)
    envdata = existing(ws, env)
    status = envdata.record.status
    if backup_type in ("data", "full") and status != "ready":
        last = envdata.record.last_operation_id
        raise BadInput(
            f"environment {env!r} is {status}: its data may be incomplete, so a {backup_type} "
            "backup of it would not hold what it says",
            hint=(f"finish it first (envplane resume {last}), or " if last else "")
            + f"back up its configuration only: envplane backup {env} --type config",
        )
    names = ["config"] if backup_type in ("config", "full") else []
    if backup_type in ("data", "full"):
        names += [r.kind for r in envdata.data_resources]
    if logical and snapshot_data(envdata.data) is not None and "postgres" in names:
        raise BadInput(
            f"--logical is a pg_dump archive; {env} is a {envdata.record.target} environment, "
            "whose database is backed up as an RDS snapshot",
            hint=f"envplane backup {env} --type {backup_type}",
        )
    if logical and "postgres" not in names:
        raise BadInput(
            f"--logical is about PostgreSQL data: a {backup_type} backup of {env} holds none"
        )
    plan = BackupPlan(env, backup_type, names, encryption_on(ws, env), logical)
    for res in envdata.data_resources if measure else []:
        if res.kind in names:
            plan.facts[res.kind] = envdata.data.data_facts(envdata.ctx, res)
    return plan


def config_document(ws: Workspace, envdata: EnvData) -> dict[str, Any]:
    """The rendered configuration, the matrix entry and the state record; never a secret."""
    record = envdata.record
    try:
        entry: Any = matrix_for(ws, envdata.name).environment(envdata.name).model_dump(mode="json")
    except BadInput:
        entry = None
    resources = {r.key: dict(r.spec) for r in envdata.desired.resources}
    config = resources.get("config/config", {}).get("files", {})
    return {
        "record": {
            "name": record.name,
            "target": record.target,
            "status": record.status,
            "template": record.template,
            "ports": dict(record.ports or {}),
            "definition": record.definition,
        },
        "matrix_entry": entry,
        "config_files": config,
        "resources": resources,
    }


def _write_component(
    envdata: EnvData,
    doc: dict[str, Any] | None,
    name: str,
    folder: Path,
    key: bytes | None,
    logical: bool,
    events: EventSink | None = None,
    total: int | None = None,
) -> Component:
    suffix = ".enc" if key is not None else ""
    managed = snapshot_data(envdata.data)
    files = SNAPSHOT_FILES if managed is not None else LOGICAL_FILES if logical else FILES
    path = folder / (files[name] + suffix)
    writer = ComponentWriter(path, key, what=name, total=total, events=events)
    try:
        if name == "config":
            writer.write(json.dumps(doc, indent=2, sort_keys=True).encode())
            written = ExportFormat("json")
        else:
            res = envdata.resource(name)
            assert res is not None
            if managed is not None:  # the service's own snapshot, named after the backup
                written = managed.snapshot(envdata.ctx, res, writer, backup_id=folder.name)
            else:
                written = envdata.data.export_data(envdata.ctx, res, writer, logical=logical)
    except BaseException:
        writer.abort()
        raise
    return writer.close(name, written.format, dict(written.details))


def backup(
    ws: Workspace,
    env: str,
    backup_type: str = "full",
    *,
    logical: bool = False,
    dry_run: bool = False,
    plan: BackupPlan | None = None,
) -> BackupResult:
    """Back up `env`. PostgreSQL goes in as a physical base backup (fast to take and to
    restore, needs the same PostgreSQL major to restore) unless `logical` asks for a pg_dump
    archive (portable, slower to restore)."""
    started = datetime.now(UTC)
    if plan is None or (plan.environment, plan.backup_type, plan.logical) != (
        env,
        backup_type,
        logical,
    ):
        plan = plan_backup(ws, env, backup_type, logical=logical, measure=dry_run)
    result = BackupResult(plan)
    if dry_run:
        return result
    envdata = existing(ws, env)
    backup_id, folder = manifest.reserve(ws.settings.backups_dir, env, started)
    journaled = BackupOperationPlan(
        environment=env,
        backup_id=backup_id,
        backup_type=backup_type,
        logical=logical,
        components=list(plan.components),
    )
    # A shared lock: other readers may back it up too, nothing may change or destroy it
    # while its data is read. Journaled before the first byte is written (the directory is
    # empty until then, and removed if the operation is refused).
    try:
        with locked_operation(
            ws.store,
            env,
            "backup",
            journaled.model_dump(),
            exclusive=False,
            events=ws.events,
        ) as op_id:
            result.operation_id = op_id
            result.manifest = _write_all(ws, envdata, plan, folder, op_id, started)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # refused, failed or interrupted
        raise
    assert result.manifest is not None
    ws.store.audit(
        env, "backup", f"{backup_id} ({backup_type}, {result.manifest.total_bytes} bytes)"
    )
    result.path = folder
    result.seconds = (datetime.now(UTC) - started).total_seconds()
    return result


def _write_all(
    ws: Workspace, envdata: EnvData, plan: BackupPlan, folder: Path, op_id: str, started: datetime
) -> Manifest:
    """Every component, side by side, as the backup operation's steps; the manifest last."""
    env, backup_type, logical, backup_id = (
        plan.environment,
        plan.backup_type,
        plan.logical,
        folder.name,
    )
    key = crypto.load_key(ws.settings.home, create=True) if plan.encrypted else None
    doc = config_document(ws, envdata) if "config" in plan.components else None
    discard_unfinished(ws, env)
    ws.progress(f"backup {backup_id}: {', '.join(plan.components)}")
    components: dict[str, Component] = {}

    def writer(name: str) -> engine_steps.Step:
        def work() -> None:
            measured = plan.facts.get(name, {}).get("bytes")  # an estimate, when measured
            components[name] = _write_component(
                envdata, doc, name, folder, key, logical, ws.events, measured
            )
            ws.progress(f"{name}: {components[name].bytes / 1e6:.1f} MB written")

        return engine_steps.Step(f"{name}/{name}", "export", work)

    engine_steps.run(ws.store, op_id, [writer(name) for name in plan.components], events=ws.events)
    done = Manifest(
        backup_id=backup_id,
        source_environment=env,
        backup_type=backup_type,
        created_at=started.isoformat(timespec="seconds"),
        created_by=ws.store.actor,
        envplane_version=__version__,
        target=envdata.record.target or "local",
        encryption=({"algorithm": crypto.ALGORITHM, "key_id": crypto.key_id(key)} if key else None),
        components=[components[name] for name in plan.components],
    )
    manifest.write(folder, done)
    return done


def discard_unfinished(ws: Workspace, env: str) -> list[str]:
    """Remove the files of backups of `env` whose process died before the manifest was
    written (their operation holds no lock any more); returns the backup ids removed."""
    holding = ws.store.lock_operations(env)
    removed = []
    for op in ws.store.operations(env, limit=50):
        if op.kind != "backup" or op.status == "succeeded" or op.id in holding:
            continue
        plan = op.plan if isinstance(op.plan, dict) else {}
        backup_id = plan.get("backup_id")
        if not isinstance(backup_id, str) or not manifest.ID_RE.fullmatch(backup_id):
            continue
        folder = ws.settings.backups_dir / backup_id
        if folder.is_dir() and not (folder / manifest.MANIFEST).exists():
            shutil.rmtree(folder, ignore_errors=True)
            ws.progress(f"removed the unfinished backup {backup_id} (operation {op.id})")
            removed.append(backup_id)
        if op.status == "running":
            ws.store.finish_operation(op.id, "failed", error="interrupted; its files were removed")
    return removed


def resume_backup(ws: Workspace, op: OperationRecord, plan: BackupOperationPlan) -> Outcome:
    """A killed backup is not continued (the snapshot it was reading is gone): its files are
    removed, it is recorded failed, and the backup is taken again as a new operation."""
    started = time.monotonic()
    folder = ws.settings.backups_dir / manifest.check_backup_id(plan.backup_id)
    if folder.is_dir() and not (folder / manifest.MANIFEST).exists():
        shutil.rmtree(folder, ignore_errors=True)
    ws.store.finish_operation(op.id, "failed", error="interrupted; its files were removed")
    done = backup(ws, op.env, plan.backup_type, logical=plan.logical)
    assert done.manifest is not None
    return Outcome(
        op.env,
        Plan(op.env, "local", "backup", ()),
        done.operation_id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=[
            f"backup {op.id} was interrupted: its files were removed; taken again as "
            f"{done.manifest.backup_id}"
        ],
    )


registry.register(
    registry.OperationKind(
        "backup", BackupOperationPlan, resume_backup, "a consistent copy of an environment"
    )
)
