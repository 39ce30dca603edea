"""The seed's five validation areas plus a smoke test, run as levels over a live environment.

The checks themselves are the target's (`targets.registry.get_validator`); this module picks
the areas of a level and collects what they found into a Report."""

from __future__ import annotations

from dataclasses import dataclass, field

from envplane.desired import desired_from_record, project_of
from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.targets.checks import Check, Status, Subject
from envplane.workspace import Workspace

__all__ = ["LEVELS", "Check", "Report", "Status", "run_validation"]

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


@dataclass
class Report:
    environment: str
    level: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)


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
    from envplane.targets.registry import get_validator

    target_name = record.target or "local"
    validator = get_validator(target_name)  # refuses a target that cannot be validated yet
    subject = Subject(
        target=ws.target(target_name),
        ctx=ws.context(env, dict(record.ports or {}), project_of(ws)),
        desired=desired_from_record(ws, record),
        secret_names=lambda: ws.store.secret_names(env),
        store_url=ws.settings.database_url,
    )
    report = Report(env, level)
    for area in LEVELS[level]:
        report.checks.extend(validator.check(area, subject))
    # Recorded with the release live then: a promotion's validation gate reads it back.
    live = ws.store.get_live(env)
    counts = {s: sum(1 for c in report.checks if c.status == s) for s in ("pass", "fail", "skip")}
    ws.store.record_validation(
        env,
        level=level,
        passed=report.ok,
        release_id=live.release_id if live is not None else None,
        summary={"checks": counts, "failed": [c.name for c in report.checks if c.status == "fail"]},
    )
    return report
