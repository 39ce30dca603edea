"""What was written to an environment's data between two moments, by the database's own
write counters: a rollback that restores the backup taken before a migration names what it
loses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envplane.workspace import Workspace


def rows_changed(ws: Workspace, env: str) -> dict[str, dict[str, int]]:
    """Per data resource that counts them (PostgreSQL), rows written so far, per table."""
    from envplane.data.envs import existing

    envdata = existing(ws, env)
    counts: dict[str, dict[str, int]] = {}
    for res in envdata.data_resources:
        found = envdata.data.rows_changed(envdata.ctx, res)
        if found is not None:
            counts[res.kind] = found
    return counts


def written_since(ws: Workspace, env: str, detail: dict[str, Any]) -> list[str]:
    """Lines naming the tables written to since the counters in `detail` were taken (with
    the backup), and how many rows; a line saying so when nothing was."""
    before: dict[str, dict[str, int]] = detail.get("rows_at_backup") or {}
    backup_id = detail.get("backup_id") or "the backup"
    if not before:
        return [f"what was written since {backup_id} is not counted here; it is lost"]
    now = rows_changed(ws, env)
    lines: list[str] = []
    for kind, tables in sorted(now.items()):
        old = before.get(kind, {})
        for table, count in sorted(tables.items()):
            # A table the migration created counts all its rows; a reset counter (a crash
            # or pg_stat_reset) shows as fewer rows than before: say "some".
            delta = count - old.get(table, 0)
            if delta > 0:
                lines.append(
                    f"lost: {delta} row change(s) written to {kind} {table} since {backup_id}"
                )
            elif delta < 0:
                lines.append(f"lost: some rows written to {kind} {table} since {backup_id}")
    return lines or [f"nothing was written to the data since {backup_id}"]
