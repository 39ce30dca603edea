"""The backups on disk: list them, find one, prune those past their retention."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from envplane.data import manifest
from envplane.data.envs import known, retention_days
from envplane.data.manifest import Manifest
from envplane.errors import BadInput, OperationFailed
from envplane.names import check_env_name
from envplane.workspace import Workspace

# A directory without a manifest younger than this may be a backup still being written.
UNFINISHED_GRACE = 3600.0


@dataclass(frozen=True)
class Listed:
    manifest: Manifest
    path: Path

    @property
    def postgres_format(self) -> str:
        """How the backup holds PostgreSQL: physical (restores on that major only), logical,
        or '-' for none."""
        comp = self.manifest.component("postgres")
        if comp is None:
            return "-"
        major = comp.details.get("postgres_major")
        return f"physical (PG {major})" if major else "logical"


def list_backups(ws: Workspace, env: str | None = None) -> list[Listed]:
    """Finished backups (those with a readable manifest), newest first."""
    if env is not None:
        check_env_name(env)
    root = ws.settings.backups_dir
    found: list[Listed] = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if not folder.is_dir() or not manifest.ID_RE.fullmatch(folder.name):
            continue
        try:
            m = manifest.read(folder)
        except (FileNotFoundError, OperationFailed):
            continue  # unfinished or damaged: never listed
        if env is None or m.source_environment == env:
            found.append(Listed(m, folder))
    if env is not None and not found:
        known(ws, env)  # an unknown name is an error; a known one may have no backups yet
    return sorted(found, key=lambda b: (b.manifest.created_at, b.manifest.backup_id), reverse=True)


def find(ws: Workspace, backup_id: str) -> tuple[Path, Manifest]:
    manifest.check_backup_id(backup_id)
    folder = ws.settings.backups_dir / backup_id
    try:
        return folder, manifest.read(folder)
    except FileNotFoundError:
        raise BadInput(
            f"no backup {backup_id!r} in {ws.settings.backups_dir}",
            hint="`envplane backups` lists the backups; an unfinished backup has no manifest",
        ) from None


@dataclass
class PruneResult:
    removed: list[Listed] = field(default_factory=list)
    unfinished: list[Path] = field(default_factory=list)
    kept: int = 0
    skipped: list[str] = field(default_factory=list)  # environments without a retention


def prune(ws: Workspace, env: str | None = None, *, dry_run: bool = False) -> PruneResult:
    """Remove backups older than their environment's backup_retention (days), and unfinished
    backup directories older than an hour."""
    if env is not None:
        check_env_name(env)
    result = PruneResult()
    now = datetime.now(UTC)
    retention: dict[str, int | None] = {}
    for item in list_backups(ws, env):
        source = item.manifest.source_environment
        if source not in retention:
            retention[source] = retention_days(ws, source)
            if retention[source] is None:
                result.skipped.append(source)
        days = retention[source]
        if days is not None and item.manifest.created < now - timedelta(days=days):
            result.removed.append(item)
        else:
            result.kept += 1
    root = ws.settings.backups_dir
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        match = manifest.ID_RE.fullmatch(folder.name)
        if not match or (folder / manifest.MANIFEST).exists():
            continue
        if env is not None and match.group(1) != env:
            continue
        if time.time() - folder.stat().st_mtime > UNFINISHED_GRACE:
            result.unfinished.append(folder)
    if not dry_run:
        for item in result.removed:
            shutil.rmtree(item.path)
            ws.store.audit(
                item.manifest.source_environment, "backup-pruned", item.manifest.backup_id
            )
        for folder in result.unfinished:
            shutil.rmtree(folder, ignore_errors=True)
    return result
