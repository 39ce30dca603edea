"""A deploy's plan as it is journaled: what moves from which version and color to which."""

from __future__ import annotations

from typing import Literal

from envplane.engine.registry import OperationPlan


class ServiceMove(OperationPlan):
    """One service of a release: from what it runs to what it will run."""

    service: str
    from_version: str
    from_color: str
    to_version: str
    to_color: str
    replicas: int
    migrate: bool = False  # a `migrate` command runs before the new version takes traffic


class DeployPlan(OperationPlan):
    environment: str
    kind: Literal["deploy", "rollback"] = "deploy"
    release_id: str
    previous_release_id: str | None = None
    strategy: str
    moves: list[ServiceMove] = []  # in dependency order (`depends_on` first)
    forced: bool = False  # `--force` past the approval rule (audited)
    promotion_id: str | None = None
    rollout_id: str | None = None  # the rollout this operation continues (a paused canary)
    first_step: int = 0  # canary: the step it continues from
    data: Literal["ask", "restore", "keep"] = "ask"  # a rollback over a migration
    backup_id: str | None = None  # the backup taken before a migration, to restore
    # Rows each table had had written when that backup was taken (what a restore loses is
    # what was written after): {"postgres": {"public.items": 12}}.
    rows_at_backup: dict[str, dict[str, int]] = {}
