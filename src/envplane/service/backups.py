"""Backups with their remote copies: push after a backup, pull before a restore, listing and
pruning — the parts of these commands that are not argument parsing or printing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from envplane.data import backup as do_backup
from envplane.data import catalog, remote
from envplane.data import restore as do_restore
from envplane.data.backup import BackupPlan, BackupResult, plan_backup
from envplane.data.catalog import Listed, PruneResult
from envplane.data.manifest import check_backup_id
from envplane.data.restore import RestoreOutcome
from envplane.workspace import Workspace


@dataclass
class BackupDone:
    result: BackupResult
    pushed_to: str | None = None
    pushed: int = 0  # objects written to S3


def backup(
    ws: Workspace,
    env: str,
    backup_type: str = "full",
    *,
    logical: bool = False,
    to_url: str | None = None,
    dry_run: bool = False,
    measure: bool = True,
    show: Callable[[BackupPlan], None] | None = None,
) -> BackupDone:
    """Plan the backup (sizes measured when `measure`), `show` it, take it, push it to S3."""
    where = remote.parse(to_url) if to_url else None  # a bad URL is refused before anything
    plan = plan_backup(ws, env, backup_type, logical=logical, measure=measure)
    if show is not None:
        show(plan)
    if dry_run:
        return BackupDone(BackupResult(plan))
    result = do_backup(ws, env, backup_type, logical=logical, plan=plan)
    done = BackupDone(result)
    if where is not None and result.manifest is not None and result.path is not None:
        ws.progress(f"pushing {result.manifest.backup_id} to {where}")
        done.pushed = len(remote.push(result.path, result.manifest, where))
        done.pushed_to = f"{where}/{result.manifest.backup_id}"
    return done


def restore(
    ws: Workspace,
    env: str,
    backup_id: str,
    *,
    from_env: str | None = None,
    from_url: str | None = None,
    force: bool = False,
    unmasked: bool = False,
    dry_run: bool = False,
    show: Callable[[RestoreOutcome], None] | None = None,
    confirm: Callable[[RestoreOutcome], bool] | None = None,
) -> RestoreOutcome:
    """Pull the backup from S3 when asked, then one restore: planned, shown, confirmed, run."""
    check_backup_id(backup_id)
    if from_url:
        where = remote.parse(from_url)
        ws.progress(f"pulling {backup_id} from {where}")
        remote.pull(where, backup_id, ws.settings.backups_dir)
    return do_restore(
        ws,
        env,
        backup_id,
        from_env=from_env,
        force=force,
        unmasked=unmasked,
        dry_run=dry_run,
        show=show,
        confirm=confirm,
    )


def list_backups(ws: Workspace, env: str | None = None) -> list[Listed]:
    return catalog.list_backups(ws, env)


def prune(ws: Workspace, env: str | None = None, *, dry_run: bool = False) -> PruneResult:
    return catalog.prune(ws, env, dry_run=dry_run)
