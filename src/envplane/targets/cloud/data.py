"""The cloud target's data operations (targets.base.DataTarget with the SnapshotData capability).

- postgres: an RDS manual snapshot `<backup-id>-db`; the backup holds its descriptor
  (identifier, ARN, engine version, status). Restore: the snapshot checked available (and the
  same ARN) while the backup is verified, then a new instance made from it swapped in through
  Terraform (`snapshot_identifier`, data_swap), waited on until available.
- redis: an ElastiCache snapshot `<backup-id>-cache`, the same way (`snapshot_name`).
- storage: the bucket's objects in a tar with an index of sizes, ETags and sha256 (data_objects).
- clone / sync: a fresh snapshot of the source's instance and group swapped into the
  destination, the objects copied server-side; masking and the database's rename run in a SQL
  session with the destination's instance (data_sql), never the source's.

Every wait on AWS is bounded (data_snapshots.wait_until) and runs inside a journaled step."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, OperationFailed
from envplane.matrix.models import DataRules
from envplane.render.cloud.names import aws_name
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import EnvContext
from envplane.targets.cloud import data_objects, data_snapshots, data_sql, data_swap
from envplane.targets.cloud.data_snapshots import Snapshot
from envplane.targets.datacaps import ExportFormat, MaskingPlan, Sink, Unpacker

FORMATS = {"postgres": "rds-snapshot", "redis": "elasticache-snapshot",
           "storage": data_objects.FORMAT}  # fmt: skip
DESCRIPTOR = "descriptor.json"


def _unsupported(res: Resource) -> BadInput:
    return BadInput(f"resource {res.key} holds no data the cloud target can move")


def _s(res: Resource, key: str) -> str:
    value = res.spec.get(key)
    if not isinstance(value, str) or not value:
        raise OperationFailed(f"{res.key}: the recorded spec has no {key}")
    return value


def _describe(snap: Snapshot, region: str, **extra: str) -> ExportFormat:
    details = {"snapshot_identifier": snap.identifier, "snapshot_arn": snap.arn,
               "region": region, "source": snap.source, "status": snap.status,
               **snap.details, **extra}  # fmt: skip
    return ExportFormat(FORMATS["postgres" if snap.service == "rds" else "redis"], details)


def _verify(kind: str, details: dict[str, str], progress: Callable[[str], None]) -> Snapshot:
    """The snapshot a backup names, still there, usable and the same one (its ARN)."""
    region, ident = details.get("region", ""), details.get("snapshot_identifier", "")
    if not region or not ident:
        raise OperationFailed(f"the backup's {kind} component names no snapshot")
    wait = (
        data_snapshots.wait_db_snapshot
        if kind == "postgres"
        else data_snapshots.wait_cache_snapshot
    )
    snap = wait(region, ident, progress)
    if details.get("snapshot_arn") and snap.arn and snap.arn != details["snapshot_arn"]:
        raise OperationFailed(
            f"snapshot {ident} is not the one the backup recorded (ARN {snap.arn}); "
            "nothing was restored"
        )
    return snap


class SnapshotUnpacker:
    """A snapshot component's descriptor taken in while it is verified; `finish` checks the
    snapshot it names with AWS (available, same ARN) before anything is swapped."""

    def __init__(self, kind: str, near: Path, progress: Callable[[str], None]) -> None:
        self.kind, self._near, self._progress = kind, near, progress
        self._data = bytearray()

    def write(self, data: bytes, /) -> int:
        self._data += data
        return len(data)

    def finish(self) -> Path:
        try:
            details = json.loads(bytes(self._data))
        except ValueError:
            raise OperationFailed(f"the backup's {self.kind} descriptor is not JSON") from None
        _verify(self.kind, {str(k): str(v) for k, v in details.items()}, self._progress)
        out = Path(tempfile.mkdtemp(prefix=f".restore-{self.kind}-",
                                    dir=self._near if self._near.is_dir() else None))  # fmt: skip
        (out / DESCRIPTOR).write_bytes(bytes(self._data))
        return out

    def abort(self) -> None:
        self._data.clear()


def _descriptor(source: Path) -> dict[str, str]:
    path = source / DESCRIPTOR if source.is_dir() else source
    return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


class CloudData:
    name = "cloud"

    # --- SnapshotData ----------------------------------------------------------------

    def data_resources(self, desired: DesiredEnvironment) -> list[Resource]:
        return data_swap.data_resources(desired)

    def snapshot(
        self, ctx: EnvContext, resource: Resource, sink: Sink, *, backup_id: str
    ) -> ExportFormat:
        region = _s(resource, "region")
        if resource.kind == "postgres":
            snap = data_snapshots.snapshot_db(
                region, _s(resource, "instance"), f"{backup_id}-db", ctx.progress
            )
            written = _describe(snap, region, database=str(resource.spec.get("database", "")))
        elif resource.kind == "redis":
            snap = data_snapshots.snapshot_cache(
                region, _s(resource, "group"), f"{backup_id}-cache", ctx.progress
            )
            written = _describe(snap, region)
        elif resource.kind == "storage":
            return data_objects.export(region, _s(resource, "bucket"), sink)
        else:
            raise _unsupported(resource)
        sink.write(json.dumps(dict(written.details), indent=2, sort_keys=True).encode())
        return written

    # --- DataTarget ------------------------------------------------------------------

    def export_data(
        self, ctx: EnvContext, resource: Resource, sink: Sink, *, logical: bool = False
    ) -> ExportFormat:
        if logical:
            raise BadInput("the cloud target backs up its database as an RDS snapshot, not pg_dump")
        return self.snapshot(ctx, resource, sink, backup_id=f"envplane-{ctx.name}-{_stamp()}")

    def check_import(self, kind: str, export: ExportFormat) -> None:
        wanted = FORMATS.get(kind)
        if wanted is None or export.format != wanted:
            raise BadInput(
                f"cannot restore {kind} data of format {export.format!r} on the cloud target",
                hint=f"the cloud target restores {wanted or 'no such data'}",
            )

    def unpacker(self, ctx: EnvContext, kind: str, export: ExportFormat) -> Unpacker | None:
        near = ctx.env_dir.parent
        if kind == "storage":
            return data_objects.ObjectsUnpacker(near)
        return SnapshotUnpacker(kind, near, ctx.progress)

    def import_data(
        self, ctx: EnvContext, resource: Resource, source: Path, export: ExportFormat
    ) -> None:
        region = _s(resource, "region")
        if resource.kind == "storage":
            done = data_objects.import_(region, _s(resource, "bucket"), source)
            ctx.progress(
                f"storage: {done['uploaded']} object(s) uploaded, {done['deleted']} deleted"
            )
            return
        details = _descriptor(source)
        snap = _verify(resource.kind, details, ctx.progress)  # again: the step may be resumed
        self._swap_in(ctx, resource, snap, details.get("database", ""))

    def _swap_in(self, ctx: EnvContext, res: Resource, snap: Snapshot, database: str) -> None:
        """The resource replaced by one made from `snap` through Terraform, then waited on."""
        region = _s(res, "region")
        if res.kind == "postgres":
            data_swap.swap(ctx, res, database=snap.identifier)
            instance = _s(res, "instance")
            data_snapshots.wait_db_instance(region, instance, ctx.progress)
            ours = str(res.spec.get("database", ""))
            if database and ours and database != ours:
                data_sql.rename_database(region, instance, database, ours)
        elif res.kind == "redis":
            data_swap.swap(ctx, res, cache=snap.identifier)
            data_snapshots.wait_cache_group(region, _s(res, "group"), ctx.progress)
        else:
            raise _unsupported(res)

    def prepare_copy(self, src: EnvContext, src_resource: Resource, dst: EnvContext) -> Any:
        return None  # the snapshot is taken by copy_data, inside the journaled operation

    masks_copies = False  # the copy is a snapshot restored into dst: masked there

    def mask_copy(
        self, prepared: Any, plan: MaskingPlan, salt: str, progress: Callable[[str], None]
    ) -> list[str]:
        raise BadInput("the cloud target masks a copy in place (apply_masking), not staged")

    def discard_copy(self, prepared: Any) -> None:
        if isinstance(prepared, Path) and prepared.is_dir():
            shutil.rmtree(prepared, ignore_errors=True)

    def copy_data(
        self,
        src: EnvContext,
        src_resource: Resource,
        dst: EnvContext,
        dst_resource: Resource,
        prepared: Any = None,
    ) -> None:
        """A fresh snapshot of the source's, swapped into the destination (the source is
        only snapshotted); objects copied server-side."""
        region = _s(src_resource, "region")
        if dst_resource.kind == "storage":
            done = data_objects.copy(region, _s(src_resource, "bucket"), _s(dst_resource, "bucket"))
            dst.progress(f"storage: {done['copied']} object(s) copied, {done['deleted']} deleted")
            return
        if dst_resource.kind == "postgres":
            name = aws_name(f"{_s(dst_resource, 'instance')}-from-{src.name}-{_stamp()}", 255)
            snap = data_snapshots.snapshot_db(
                region, _s(src_resource, "instance"), name, dst.progress
            )
        elif dst_resource.kind == "redis":
            name = aws_name(f"{_s(dst_resource, 'group')}-from-{src.name}-{_stamp()}", 200)
            snap = data_snapshots.snapshot_cache(
                region, _s(src_resource, "group"), name, dst.progress
            )
        else:
            raise _unsupported(dst_resource)
        self._swap_in(dst, dst_resource, snap, str(src_resource.spec.get("database", "")))

    def data_facts(self, ctx: EnvContext, resource: Resource) -> dict[str, int]:
        region = _s(resource, "region")
        if resource.kind == "storage":
            found = data_objects.objects(region, _s(resource, "bucket"))
            return {"objects": len(found), "bytes": sum(v[0] for v in found.values())}
        if resource.kind == "postgres":
            found_db = data_snapshots.db_instance(region, _s(resource, "instance")) or {}
            return {"allocated_gb": int(found_db.get("AllocatedStorage") or 0)}
        return {}

    def rows_changed(self, ctx: EnvContext, resource: Resource) -> dict[str, int] | None:
        return None

    def stop_services(self, ctx: EnvContext) -> list[str]:
        # The Deployments keep running: the swap replaces the instance under the same
        # endpoint, and the apps reconnect to the new one (docs/cloud.md, "Data").
        return []

    def check_masking(
        self, ctx: EnvContext, resource: Resource, rules: DataRules, source_env: str
    ) -> MaskingPlan:
        if resource.kind != "postgres":
            raise _unsupported(resource)
        return data_sql.check(_s(resource, "region"), _s(resource, "instance"),
                              _s(resource, "database"), rules, source_env)  # fmt: skip

    def apply_masking(
        self,
        ctx: EnvContext,
        resource: Resource,
        plan: MaskingPlan,
        salt: str,
        progress: Callable[[str], None],
    ) -> list[str]:
        if resource.kind != "postgres":  # `resource` is the destination's: the copy
            raise _unsupported(resource)
        return data_sql.apply(_s(resource, "region"), _s(resource, "instance"),
                              _s(resource, "database"), plan, salt, progress)  # fmt: skip


__all__ = ["CloudData"]
