"""What a target driver offers the data layer: export and import of an environment's data
(backup, restore, clone, sync), masking, and managed-service snapshots (`SnapshotData`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from envplane.matrix.models import DataRules
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import EnvContext


class Sink(Protocol):
    """Where an export streams its bytes (a file, or a hashing / encrypting writer)."""

    def write(self, data: bytes, /) -> object: ...


class Unpacker(Sink, Protocol):
    """Takes an export's bytes while they are being verified and unpacks them aside, ready to
    swap in; nothing of the environment is touched until `import_data`."""

    def finish(self) -> Path:
        """All bytes were written and verified: complete the unpacking; where it is."""
        ...

    def abort(self) -> None:
        """The bytes were bad or the restore stops: throw away what was unpacked."""
        ...


@dataclass(frozen=True)
class ExportFormat:
    """What an export wrote: a format name, and what importing it needs to know (a PostgreSQL
    major version, the source database's name) - recorded with the backup component."""

    format: str
    details: Mapping[str, str] = field(default_factory=dict)


# Resource kinds that hold data a backup, clone or sync moves, in the order they are moved.
DATA_KINDS = ("postgres", "redis", "storage")


@dataclass(frozen=True)
class MaskingPlan:
    """Masking rules matched with a source environment's schema (DataTarget.check_masking),
    ready to run in a copy of its data (DataTarget.apply_masking). `details` is the driver's
    own: what it learnt of the schema (column facts), opaque to everything else."""

    source: str  # the environment whose rules these are
    rules: DataRules
    details: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> list[str]:
        lines = [f"keep rows of {t} where {c}" for t, c in self.rules.subset.items()]
        for path, rule in self.rules.masking.items():
            shown = (
                "null"
                if rule is None
                else rule
                if rule in ("hash", "redact", "null")
                else "a fixed value"
            )
            lines.append(f"mask {path}: {shown}")
        return lines


class DataTarget(Protocol):
    """A driver's data operations (backup, restore, clone, sync), beside `Target`.

    Each method works on one data resource (kind in DATA_KINDS) as the store recorded it."""

    def export_data(
        self, ctx: EnvContext, resource: Resource, sink: Sink, *, logical: bool = False
    ) -> ExportFormat:
        """Stream a consistent snapshot of the resource's data into `sink`; the source keeps
        serving. `logical` asks for a portable export (a dump, not a physical copy)."""
        ...

    def check_import(self, kind: str, export: ExportFormat) -> None:
        """Raise BadInput when an export of that format cannot be imported here (before
        anything is touched)."""
        ...

    def unpacker(self, ctx: EnvContext, kind: str, export: ExportFormat) -> Unpacker | None:
        """An Unpacker for an export of `kind` into ctx's environment (which may not exist
        yet), when importing it gains from unpacking it while it is verified; else None."""
        ...

    def import_data(
        self, ctx: EnvContext, resource: Resource, source: Path, export: ExportFormat
    ) -> None:
        """Replace the resource's data with an export read from `source` (a file, or what
        this driver's Unpacker made of it); idempotent."""
        ...

    def prepare_copy(self, src: EnvContext, src_resource: Resource, dst: EnvContext) -> Any:
        """Start on a copy before dst exists (it may be made while dst is being created);
        returns a token for copy_data, or None when the driver has nothing to prepare."""
        ...

    def discard_copy(self, prepared: Any) -> None:
        """Drop a prepared copy that will not be used (idempotent)."""
        ...

    # True: mask_copy masks a prepared copy before it is put in place (dst never holds an
    # original value); False: masking runs in dst after copy_data (apply_masking).
    masks_copies: bool

    def mask_copy(
        self, prepared: Any, plan: MaskingPlan, salt: str, progress: Callable[[str], None]
    ) -> list[str]:
        """Subset and mask a postgres copy prepare_copy made (only where `masks_copies`),
        all or nothing, leaving no original value in its files; one line per change made."""
        ...

    def copy_data(
        self,
        src: EnvContext,
        src_resource: Resource,
        dst: EnvContext,
        dst_resource: Resource,
        prepared: Any = None,
    ) -> None:
        """Replace dst's data with src's, the fastest way the driver knows; src stays online.
        `prepared` is prepare_copy's token for this pair, used instead of copying again."""
        ...

    def data_facts(self, ctx: EnvContext, resource: Resource) -> dict[str, int]:
        """Sizes for a dry run: bytes, keys, objects; read-only."""
        ...

    def rows_changed(self, ctx: EnvContext, resource: Resource) -> dict[str, int] | None:
        """Per table, the rows inserted, updated and deleted since the database's statistics
        began (compared before and after, they say what was written in between); None where
        the resource keeps no such count."""
        ...

    def stop_services(self, ctx: EnvContext) -> list[str]:
        """Stop the app's services so nothing writes while data is replaced; `Target.apply`
        of each service resource starts them again. Returns what was stopped."""
        ...

    def check_masking(
        self, ctx: EnvContext, resource: Resource, rules: DataRules, source_env: str
    ) -> MaskingPlan:
        """Match `source_env`'s masking and subset rules with the schema of the resource's
        data, read-only; BadInput naming `environments.<source_env>.data...` for the first
        rule that does not fit."""
        ...

    def apply_masking(
        self,
        ctx: EnvContext,
        resource: Resource,
        plan: MaskingPlan,
        salt: str,
        progress: Callable[[str], None],
    ) -> list[str]:
        """Subset and mask the resource's data (a copy) by `plan`, all or nothing, and leave
        no original value in its files; `salt` makes hashing deterministic. Returns one line
        per change made ("masked 2 column(s) of public.users in 10 rows")."""
        ...


@runtime_checkable
class SnapshotData(Protocol):
    """An optional capability of a DataTarget whose data lives in managed services (RDS,
    ElastiCache, S3) rather than in files of this machine; the data layer asks for it
    (`snapshot_data`) and a target without it is driven as before.

    Its data resources are not resources of its own plan (one Terraform resource holds them
    all): `data_resources` names them, kinds from DATA_KINDS. A backup component of such a
    kind is the service's own snapshot, named after the backup; what is streamed into the
    backup is its descriptor (identifiers, ARN, status), so the manifest's sha256 covers what
    the restore will trust, and `unpacker`/`import_data` verify the snapshot is still there
    and usable before anything is swapped."""

    def data_resources(self, desired: DesiredEnvironment) -> list[Resource]:
        """The environment's data resources (kind in DATA_KINDS), in the order they move."""
        ...

    def snapshot(
        self, ctx: EnvContext, resource: Resource, sink: Sink, *, backup_id: str
    ) -> ExportFormat:
        """Take the resource's snapshot for backup `backup_id` (waiting, bounded, until the
        service reports it usable) and write what identifies it, or the data itself, into
        `sink`; raise OperationFailed when the service reports it failed."""
        ...


def snapshot_data(data: DataTarget) -> SnapshotData | None:
    """The SnapshotData capability of a data driver, or None when it has none."""
    return data if isinstance(data, SnapshotData) else None


def data_resources(data: DataTarget, desired: DesiredEnvironment) -> list[Resource]:
    """The data resources of an environment: those its driver names (SnapshotData), else
    its plan's resources of the DATA_KINDS, in that order."""
    managed = snapshot_data(data)
    if managed is not None:
        return managed.data_resources(desired)
    found = [next((r for r in desired.resources if r.kind == k), None) for k in DATA_KINDS]
    return [r for r in found if r is not None]
