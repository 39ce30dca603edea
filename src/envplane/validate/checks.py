"""The seed's five validation areas plus a smoke test, run as levels over a live environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from envplane.errors import BadInput
from envplane.lifecycle.common import desired_from_record, project_of
from envplane.names import check_env_name
from envplane.workspace import Workspace

Status = Literal["pass", "fail", "skip"]
LEVELS: dict[str, tuple[str, ...]] = {
    "basic": ("infrastructure", "applications"),
    "standard": ("infrastructure", "applications", "networking", "monitoring"),
    "comprehensive": (
        "infrastructure",
        "applications",
        "networking",
        "monitoring",
        "security",
        "smoke",
    ),
}


@dataclass(frozen=True)
class Check:
    category: str
    name: str
    status: Status
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    environment: str
    level: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "level": self.level,
            "ok": self.ok,
            "checks": [asdict(c) for c in self.checks],
        }


CheckFn = Callable[..., list[Check]]


def run_validation(ws: Workspace, env: str, *, level: str | None = None) -> Report:
    check_env_name(env)
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} is not created; nothing to validate")
    if level is None:
        try:
            level = ws.matrix.strategy_for(env).validation_required
        except BadInput:
            level = "basic"
    if level not in LEVELS:
        raise BadInput(f"unknown validation level {level!r}; use basic, standard or comprehensive")
    if (record.target or "local") != "local":
        raise BadInput("validation of cloud environments is not available in this version")
    from envplane.validate import local_checks

    target = ws.target("local")
    desired = desired_from_record(ws, record)
    ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
    report = Report(env, level)
    areas: dict[str, CheckFn] = {
        "infrastructure": local_checks.infrastructure,
        "applications": local_checks.applications,
        "networking": local_checks.networking,
        "monitoring": local_checks.monitoring,
        "security": local_checks.security,
        "smoke": local_checks.smoke,
    }
    for area in LEVELS[level]:
        report.checks.extend(areas[area](ws=ws, target=target, ctx=ctx, desired=desired))
    return report
