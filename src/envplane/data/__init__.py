"""Data operations on environments: backup, restore, clone, sync, masking, remote copies.

Library code only (no CLI); each function takes a Workspace, like the lifecycle's. Drivers are
reached through the DataTarget protocol (targets/base.py), never imported directly.
"""

from envplane.data.backup import BackupResult, backup, plan_backup
from envplane.data.catalog import list_backups, prune
from envplane.data.clone import CloneOutcome, clone
from envplane.data.restore import RestoreOutcome, restore
from envplane.data.sync import SyncOutcome, sync

__all__ = [
    "BackupResult",
    "CloneOutcome",
    "RestoreOutcome",
    "SyncOutcome",
    "backup",
    "clone",
    "list_backups",
    "plan_backup",
    "prune",
    "restore",
    "sync",
]
