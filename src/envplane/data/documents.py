"""The data operations' plans as they are journaled: typed, read back by the registry."""

from __future__ import annotations

from envplane.engine.registry import OperationPlan


class TransferPlan(OperationPlan):
    """clone --with-data / sync --type data: SRC's data into the operation's environment."""

    operation: str
    environment: str
    source: str
    unmasked: bool = False
    steps: list[str] = []


class RestorePlan(OperationPlan):
    operation: str = "restore"
    environment: str
    backup_id: str
    from_env: str | None = None
    unmasked: bool = False
    steps: list[str] = []


class BackupOperationPlan(OperationPlan):
    """A backup: journaled from its first byte, so a killed one is found and its files go."""

    operation: str = "backup"
    environment: str
    backup_id: str
    backup_type: str = "full"
    logical: bool = False
    components: list[str] = []
