"""`envplane policies`: the rules in force, where each was set and which environments it holds
in, and the ones switched off with their reason (the document of `-o json`)."""

from __future__ import annotations

from envplane.matrix import Matrix, policies
from envplane.matrix.policies import Rule
from envplane.service.results import View


class RuleView(View):
    id: str
    key: str
    """A key path of an environment (`*`: every key or item)."""
    op: str
    value: object
    requires: str
    """What the key must be, as violations say it (`>= 7`, `one of [a, b]`, `a value`)."""
    description: str | None
    applies_to: str
    """The selector in words: `approval_required`, `labels tier=production`, `every environment`."""
    environments: list[str]
    """The matrix's environments it holds in."""
    set_at: str
    """`envplane default`, or the matrix file:line of the rule."""


class DisabledView(View):
    id: str
    reason: str
    line: int | None
    """The line of the matrix that switches it off."""
    environments: list[str]
    """The environments it would hold in."""


class PoliciesView(View):
    matrix: str
    rules: list[RuleView]
    """The rules in force: envplane's defaults, then the matrix's own."""
    disabled: list[DisabledView]


def applies_text(rule: Rule) -> str:
    to = rule.spec.applies_to
    parts = []
    if to.environments is not None:
        parts.append(f"environments {', '.join(to.environments) or '(none)'}")
    if to.approval_required is not None:
        parts.append("approval_required" if to.approval_required else "no approval_required")
    if to.labels:
        parts.append("labels " + ", ".join(f"{k}={v}" for k, v in to.labels.items()))
    return " and ".join(parts) or "every environment"


def policies_view(matrix: Matrix) -> PoliciesView:
    disabled = matrix.spec.policies.disable
    rules, off = [], []
    for rule in policies.all_rules(matrix):
        envs = [env for env in matrix.environments if rule.applies(matrix, env)]
        if rule.id in disabled:
            off.append(
                DisabledView(
                    id=rule.id,
                    reason=disabled[rule.id],
                    line=matrix.line_of(("policies", "disable", rule.id)),
                    environments=envs,
                )
            )
            continue
        rules.append(
            RuleView(
                id=rule.id,
                key=rule.spec.key,
                op=rule.spec.op,
                value=rule.value,
                requires=rule.requires(),
                description=rule.spec.description,
                applies_to=applies_text(rule),
                environments=envs,
                set_at=rule.source,
            )
        )
    return PoliciesView(matrix=str(matrix.path), rules=rules, disabled=off)
