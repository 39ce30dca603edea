"""The drift report: what runs against what envplane applied, field by field, and what the
matrix wants that was not applied yet. Read-only: building it changes nothing.

The world is compared with the resources as the store recorded them (what envplane last
applied), so only changes made behind envplane's back are drift; a matrix edited since is not
drift but a pending change (`plan` shows it), listed apart."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from envplane.desired import desired_from_record, project_of, render
from envplane.errors import BadInput, UnknownEnvironment
from envplane.names import check_env_name
from envplane.targets.base import DriftItem, DriftTarget
from envplane.workspace import Workspace


@dataclass(frozen=True)
class DriftReport:
    environment: str
    target: str
    items: tuple[DriftItem, ...]
    # Resources whose matrix rendering differs from what was applied (not drift: `plan`).
    pending: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())

    @property
    def drifted(self) -> bool:
        return bool(self.items)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "target": self.target,
            "drift": self.drifted,
            "items": [asdict(item) for item in self.items],
            "pending": list(self.pending),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        lines = [f"Drift of {self.environment} ({self.target}):"]
        if not self.items:
            lines.append("  none: what runs is what envplane applied.")
        for item in self.items:
            lines.append(f"  {item.resource}  {item.field}")
            lines.append(f"      expected: {item.expected}")
            lines.append(f"      actual:   {item.actual}")
            if item.changed_by:
                lines.append(f"      by:       {item.changed_by}")
        if self.pending:
            lines.append(
                "Not applied yet (the matrix changed; see `envplane plan`): "
                + ", ".join(self.pending)
            )
        lines += [f"Note: {note}" for note in self.notes]
        if self.items:
            lines.append(
                f"{len(self.items)} field(s) drifted; `envplane update {self.environment}` "
                "puts them back."
            )
        return "\n".join(lines)


def _refuse(ws: Workspace, env: str) -> BadInput:
    """Why `env` has nothing to compare: unknown, never created, or destroyed."""
    if env not in ws.matrix.environments:
        try:
            ws.matrix.environment(env)
        except UnknownEnvironment as exc:
            return exc
        return UnknownEnvironment(f"unknown environment {env!r}")
    return BadInput(
        f"environment {env!r} is not created: nothing runs to compare",
        hint=f"create it first: envplane create {env}",
    )


def drift_report(ws: Workspace, env: str) -> DriftReport:
    check_env_name(env)
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise _refuse(ws, env)
    target_name = record.target or "local"
    target = ws.target(target_name)
    if not isinstance(target, DriftTarget):
        raise BadInput(f"drift of {target_name} environments is not available in this version")
    applied = desired_from_record(ws, record)
    ports = dict(record.ports or {})
    ctx = ws.context(env, ports, project_of(ws))
    items = tuple(target.drift(ctx, applied))
    pending, notes = _pending(ws, env, record.template, target_name, ports)
    return DriftReport(env, target_name, items, pending, notes)


def _pending(
    ws: Workspace, env: str, template: str | None, target: str, ports: dict[str, int]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The resources the matrix would change now (keys), without observing anything."""
    try:
        wanted = render(ws, env, target=target, template=template, ports=ports).desired
    except BadInput as exc:
        return (), (f"the matrix does not render {env} now: {exc.message}",)
    recorded = ws.store.resources(env)
    keys = {r.key for r in wanted.resources}
    changed = [
        r.key
        for r in wanted.resources
        if r.key not in recorded or recorded[r.key].digest != r.digest
    ]
    changed += sorted(k for k in recorded if k not in keys)
    return tuple(changed), ()
