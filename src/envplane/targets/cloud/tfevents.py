"""Terraform's machine-readable UI (`-json`): one JSON event per line, read as it arrives.

Event types used (Terraform 1.x, also OpenTofu): version, planned_change, change_summary,
apply_start, apply_progress, apply_complete, apply_errored, diagnostic, outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    def line(self) -> str:
        where = f" ({self.address})" if self.address else ""
        detail = f": {self.detail.strip()}" if self.detail.strip() else ""
        return f"{self.summary}{where}{detail}"


@dataclass
class Events:
    """What one terraform run reported, collected from its event stream."""

    planned: list[tuple[str, str]] = field(default_factory=list)  # (address, action)
    summary: dict[str, Any] | None = None  # change_summary.changes
    completed: list[str] = field(default_factory=list)
    errored: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    version: str | None = None

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def changes(self) -> int:
        s = self.summary or {}
        return (
            int(s.get("add", 0))
            + int(s.get("change", 0))
            + int(s.get("remove", 0))
            + int(s.get("import", 0))
        )

    def error_text(self, limit: int = 5) -> str:
        lines = [d.line() for d in self.errors[:limit]]
        more = len(self.errors) - limit
        if more > 0:
            lines.append(f"... and {more} more error(s)")
        return "; ".join(lines)

    def feed(self, raw: str, progress: Callable[[str], None]) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            return  # plain text (a provider's stray print): not part of the protocol
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        message = str(event.get("@message", ""))
        if kind == "version":
            self.version = str(event.get("terraform") or event.get("tofu") or "")
        elif kind == "planned_change":
            change = event.get("change") or {}
            addr = str((change.get("resource") or {}).get("addr", "?"))
            self.planned.append((addr, str(change.get("action", "?"))))
        elif kind == "change_summary":
            self.summary = dict(event.get("changes") or {})
            progress(message)
        elif kind == "apply_complete":
            self.completed.append(_hook_addr(event))
            progress(message)
        elif kind == "apply_errored":
            self.errored.append(_hook_addr(event))
            progress(message)
        elif kind == "diagnostic":
            d = event.get("diagnostic") or {}
            diag = Diagnostic(
                severity=str(d.get("severity", event.get("@level", "error"))),
                summary=str(d.get("summary", message)),
                detail=str(d.get("detail", "")),
                address=str(d.get("address", "")),
            )
            self.diagnostics.append(diag)
            if diag.severity == "warning":
                progress(f"warning: {diag.summary}")


def _hook_addr(event: dict[str, Any]) -> str:
    hook = event.get("hook") or {}
    return str((hook.get("resource") or {}).get("addr", "?"))
