"""The data commands' results as models: backup, backups (list, prune), restore, clone, sync.

As in `results`: `View.of(result)` builds the document, `model_dump(mode="json")` is exactly
what `-o json` prints; fields are in the document's key order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from envplane.plan.model import PlanView
from envplane.service.results import View

if TYPE_CHECKING:
    from envplane.data.catalog import Listed, PruneResult
    from envplane.data.clone import CloneOutcome
    from envplane.data.restore import RestoreOutcome
    from envplane.data.sync import SyncOutcome
    from envplane.service.backups import BackupDone

__all__ = [
    "BackupComponentView",
    "BackupListing",
    "BackupView",
    "CloneView",
    "PruneView",
    "RestoreView",
    "SyncView",
]

Facts = dict[str, dict[str, int]]
"""Per data kind (postgres, redis, storage), what was measured, e.g. {"bytes": 1234}."""


class BackupComponentView(View):
    name: str
    """config, postgres, redis or storage."""
    file: str
    """Relative to the backup's directory."""
    bytes: int
    """Of the stored file (encrypted, when encryption is on)."""
    sha256: str
    format: str
    details: dict[str, str]
    """What importing it needs to know, e.g. {"postgres_major": "16"}."""


class BackupView(View):
    """A backup just taken: its manifest, where it is, how long it took."""

    backup_id: str
    source_environment: str
    backup_type: str
    created_at: str
    """ISO 8601, UTC."""
    created_by: str
    envplane_version: str
    target: str
    encryption: dict[str, str] | None
    """{"algorithm": ..., "key_id": ...}, or null when stored in the clear."""
    components: list[BackupComponentView]
    path: str
    seconds: float
    pushed_to: str | None = Field(default=None, exclude_if=lambda v: v is None)
    """The S3 URL it was pushed to; absent when it was not pushed."""

    @classmethod
    def of(cls, done: BackupDone) -> BackupView:
        m, path = done.result.manifest, done.result.path
        if m is None or path is None:
            raise ValueError("a backup that was only planned (dry run) has no document")
        return cls(
            backup_id=m.backup_id,
            source_environment=m.source_environment,
            backup_type=m.backup_type,
            created_at=m.created_at,
            created_by=m.created_by,
            envplane_version=m.envplane_version,
            target=m.target,
            encryption=m.encryption,
            components=[
                BackupComponentView(
                    name=c.name,
                    file=c.file,
                    bytes=c.bytes,
                    sha256=c.sha256,
                    format=c.format,
                    details=c.details,
                )
                for c in m.components
            ],
            path=str(path),
            seconds=round(done.result.seconds, 3),
            pushed_to=done.pushed_to,
        )


class BackupListing(View):
    """One backup of `envplane backups`."""

    backup_id: str
    environment: str
    type: str
    """config, data or full."""
    created_at: str
    """ISO 8601, UTC."""
    created_by: str
    bytes: int
    """All its components' stored files together."""
    encrypted: bool
    components: list[str]
    path: str

    @classmethod
    def of(cls, listed: Listed) -> BackupListing:
        m = listed.manifest
        return cls(
            backup_id=m.backup_id,
            environment=m.source_environment,
            type=m.backup_type,
            created_at=m.created_at,
            created_by=m.created_by,
            bytes=m.total_bytes,
            encrypted=m.encryption is not None,
            components=[c.name for c in m.components],
            path=str(listed.path),
        )


class PruneView(View):
    dry_run: bool
    removed: list[BackupListing]
    """Removed, or with dry_run those that would be."""
    unfinished_removed: list[str]
    """Directories of unfinished backups older than an hour."""
    kept: int
    no_retention: list[str]
    """Environments whose backups were all kept: no backup_retention in the matrix."""

    @classmethod
    def of(cls, result: PruneResult, *, dry_run: bool) -> PruneView:
        return cls(
            dry_run=dry_run,
            removed=[BackupListing.of(b) for b in result.removed],
            unfinished_removed=[str(p) for p in result.unfinished],
            kept=result.kept,
            no_retention=list(result.skipped),
        )


class RestoreView(View):
    environment: str
    backup_id: str
    source_environment: str
    """The environment the backup was taken of."""
    recreate: bool
    """The environment was destroyed and is created again first."""
    steps: list[str]
    components: list[str]
    notes: list[str]
    operations: list[str]
    applied: bool
    seconds: float

    @classmethod
    def of(cls, outcome: RestoreOutcome) -> RestoreView:
        return cls(
            environment=outcome.environment,
            backup_id=outcome.backup_id,
            source_environment=outcome.source_environment,
            recreate=outcome.recreate,
            steps=list(outcome.steps),
            components=list(outcome.components),
            notes=list(outcome.notes),
            operations=list(outcome.operations),
            applied=outcome.applied,
            seconds=outcome.seconds,
        )


class CloneView(View):
    source: str
    target: str
    with_data: bool
    plan: PlanView
    """The create of the target environment."""
    masking: list[str]
    """The masking rules applied to the copy (planned, on a dry run)."""
    data: Facts
    operations: list[str]
    applied: bool
    seconds: float
    data_seconds: float

    @classmethod
    def of(cls, outcome: CloneOutcome) -> CloneView:
        return cls(
            source=outcome.source,
            target=outcome.target,
            with_data=outcome.with_data,
            plan=PlanView.of(outcome.create.plan),
            masking=list(outcome.masking),
            data=outcome.data_facts,
            operations=list(outcome.operations),
            applied=outcome.applied,
            seconds=round(outcome.seconds, 3),
            data_seconds=round(outcome.data_seconds, 3),
        )


class SyncView(View):
    source: str
    target: str
    type: str
    """config, data or both."""
    config_plan: PlanView | None
    """The update of the target environment; null when only data is synced."""
    data: dict[str, Facts]
    """Per environment (source and target), its data facts."""
    masking: list[str]
    operations: list[str]
    applied: bool

    @classmethod
    def of(cls, outcome: SyncOutcome) -> SyncView:
        return cls(
            source=outcome.source,
            target=outcome.target,
            type=outcome.sync_type,
            config_plan=PlanView.of(outcome.config.plan) if outcome.config else None,
            data=outcome.data_facts,
            masking=list(outcome.masking),
            operations=list(outcome.operations),
            applied=outcome.applied,
        )
