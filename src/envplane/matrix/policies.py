"""Policies: rules on the matrix that an environment must keep (docs/policies.md).

envplane's defaults (`policies_default`) hold in every production-like environment; a matrix
adds its own under `policies: {rules: [...]}` and switches any off only with a reason
(`policies: {disable: {ID: REASON}}`). Rules are checked when the matrix loads (`check_rules`:
a key no environment can have, a value of the wrong type, an unknown id, each at its line) and
evaluated on demand (`evaluate`): `envplane check`, and before create, update and promote
(`refuse`), which is why they live here, below every layer that refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from envplane.errors import MatrixError, PolicyRefused
from envplane.matrix import policypaths as paths
from envplane.matrix.models_policy import PolicyRule
from envplane.matrix.policies_default import DEFAULTS
from envplane.matrix.vocab import suggest
from envplane.matrix.yamlsafe import KeyPath

if TYPE_CHECKING:
    from envplane.matrix.loader import Matrix
    from envplane.matrix.models import MatrixSpec

ErrorAt = Callable[[KeyPath, str, str | None], MatrixError]
DEFAULT_SOURCE = "envplane default (envplane/matrix/policies_default.py)"
DEFAULT_IDS = tuple(str(rule["id"]) for rule in DEFAULTS)
_ORDER = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
_PRIVATE = {"env", "variables"}  # values there may be secrets: never shown


@dataclass(frozen=True)
class Rule:
    """A rule checked and ready to evaluate: its path parsed, its value of the key's type."""

    spec: PolicyRule
    path: paths.Path
    value: Any  # normalised through the key's type (`true` for a switch is "enabled")
    source: str  # "envplane default", or the matrix file:line of the rule
    line: int | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def requires(self) -> str:
        op = self.spec.op
        if op == "present":
            return "a value"
        if op == "absent":
            return "no value"
        if op in ("in", "not_in"):
            listed = ", ".join(shown(v) for v in self.value)
            return f"{'one' if op == 'in' else 'none'} of [{listed}]"
        sign = {"eq": "==", "ne": "!=", **_ORDER}[op]
        return f"{sign} {shown(self.value)}"

    def holds(self, actual: Any) -> bool:
        op, want = self.spec.op, self.value
        if op == "present":
            return actual is not paths.MISSING
        if op == "absent":
            return actual is paths.MISSING
        if actual is paths.MISSING:
            return False
        if op == "eq":
            return bool(actual == want)
        if op == "ne":
            return bool(actual != want)
        if op == "in":
            return actual in want
        if op == "not_in":
            return actual not in want
        return bool(
            {"ge": actual >= want, "gt": actual > want, "le": actual <= want, "lt": actual < want}[
                op
            ]
        )

    def applies(self, matrix: Matrix, env: str) -> bool:
        to = self.spec.applies_to
        if to.environments is not None and env not in to.environments:
            return False
        if to.approval_required is not None:
            strategy = matrix.deployment_strategies.get(env)
            if (strategy is not None and strategy.approval_required) != to.approval_required:
                return False
        labels = matrix.environments[env].labels
        return all(labels.get(k) == v for k, v in to.labels.items())


@dataclass(frozen=True)
class Violation:
    environment: str
    rule: Rule
    key: str  # the concrete key path in the environment (`services.backend.replicas`)
    actual: str  # what the environment has, as shown ("nothing (not set)" when missing)
    file: str
    line: int | None

    def text(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return (
            f"{where}: environments.{self.environment}.{self.key}: rule {self.rule.id!r} "
            f"requires {self.rule.requires()}, got {self.actual}"
        )


def quoted(value: Any) -> str:
    return repr(value) if isinstance(value, str) else shown(value)


def shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return repr(value)


# --- checking the rules when the matrix loads ----------------------------------------------


def compile_rule(rule: PolicyRule, at: KeyPath, error_at: ErrorAt, source: str) -> Rule:
    """The rule ready to evaluate; its problem, made by `error_at`, raised if it has one."""
    try:
        path = paths.parse(rule.key)
        leaf = paths.leaf(path)
    except paths.PathProblem as exc:
        raise error_at(
            (*at, "key"), str(exc), "a key path of an environment, as written in the matrix"
        ) from None
    problem = _value_problem(rule, leaf)
    if problem is not None:
        raise error_at((*at, "value"), problem[0], problem[1])
    value: Any = rule.value
    if rule.op in ("eq", "ne"):
        value = _typed(leaf, rule.value)
    elif rule.op in ("in", "not_in") and isinstance(rule.value, list):
        value = [_typed(leaf, v) for v in rule.value]
    return Rule(rule, path, value, source)


def _value_problem(rule: PolicyRule, leaf: paths.Leaf) -> tuple[str, str | None] | None:
    op, value = rule.op, rule.value
    if op in ("present", "absent"):
        if value is not None:
            return f"`{op}` takes no value", "remove `value:`"
        return None
    if leaf.section:
        return (
            f"{rule.key} is a section, not a value: `{op}` cannot compare it",
            "use `op: present` or `op: absent`, or name a key inside it",
        )
    if value is None:
        return f"`{op}` needs a value", None
    if op in _ORDER:
        if not leaf.numeric():
            return (
                f"`{op}` compares numbers; {rule.key} is not a number",
                "use eq, ne, in or not_in",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"`{op}` needs a number, got {quoted(value)}", None
        return None
    if (op in ("in", "not_in")) != isinstance(value, list):
        return (
            (f"`{op}` needs a list of values", "value: [a, b]")
            if op in ("in", "not_in")
            else (f"`{op}` compares one value, not a list", "use `op: in` for a list")
        )
    for item in value if isinstance(value, list) else [value]:
        try:
            _typed(leaf, item)
        except ValidationError:
            choices = [str(c) for c in leaf.choices()]
            allowed = f"one of: {', '.join(choices)}" if choices else None
            return (
                f"{quoted(item)} is not a value {rule.key} can have{suggest(item, choices)}",
                allowed,
            )
    return None


def _typed(leaf: paths.Leaf, value: Any) -> Any:
    return _adapter(leaf.annotation).validate_python(value, strict=True)


@cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def check_rules(spec: MatrixSpec, error_at: ErrorAt) -> list[MatrixError]:
    """Every problem of the matrix's `policies:`, each at its line (a rule's key, value, an
    environment it names; a duplicate or default id; an unknown id under `disable`)."""
    errors: list[MatrixError] = []
    policies = spec.policies
    ids: set[str] = set()
    for i, rule in enumerate(policies.rules):
        at: KeyPath = ("policies", "rules", i)
        if rule.id in DEFAULT_IDS or rule.id in ids:
            what = "a default rule of envplane" if rule.id in DEFAULT_IDS else "another rule here"
            errors.append(
                error_at(
                    (*at, "id"),
                    f"rule id {rule.id!r} is taken by {what}",
                    "give it an id of its own; a default is changed by disabling it (with a "
                    "reason) and adding a rule under another id",
                )
            )
        ids.add(rule.id)
        try:
            compile_rule(rule, at, error_at, "")
        except MatrixError as exc:
            errors.append(exc)
        for n, name in enumerate(rule.applies_to.environments or []):
            if name not in spec.environments:
                errors.append(
                    error_at(
                        (*at, "applies_to", "environments", n),
                        f"no environment named {name!r}{suggest(name, spec.environments)}",
                        f"environments: {', '.join(spec.environments)}",
                    )
                )
    known = [*DEFAULT_IDS, *ids]
    for rule_id in policies.disable:
        if rule_id not in known:
            errors.append(
                error_at(
                    ("policies", "disable", rule_id),
                    f"no rule {rule_id!r} to disable{suggest(rule_id, known)}",
                    f"rules: {', '.join(known)} (`envplane policies` lists them)",
                )
            )
    return errors


# --- the rules in force, and evaluating them ----------------------------------------------


@cache
def default_rules() -> tuple[Rule, ...]:
    def fail(at: KeyPath, message: str, hint: str | None) -> MatrixError:
        return MatrixError(message, file=__name__, key=str(at), hint=hint)

    out = []
    for i, raw in enumerate(DEFAULTS):
        out.append(compile_rule(PolicyRule.model_validate(raw), (i,), fail, DEFAULT_SOURCE))
    return tuple(out)


def matrix_rules(matrix: Matrix) -> list[Rule]:
    """The matrix's own rules (checked when it loaded), each with its file:line."""
    out = []
    for i, rule in enumerate(matrix.spec.policies.rules):
        at: KeyPath = ("policies", "rules", i)
        line = matrix.line_of(at)
        compiled = compile_rule(rule, at, matrix.error_at, f"{matrix.path}:{line}")
        out.append(Rule(compiled.spec, compiled.path, compiled.value, compiled.source, line))
    return out


def all_rules(matrix: Matrix) -> list[Rule]:
    """envplane's defaults, then the matrix's rules; disabled ones included."""
    return [*default_rules(), *matrix_rules(matrix)]


def in_force(matrix: Matrix) -> list[Rule]:
    disabled = matrix.spec.policies.disable
    return [rule for rule in all_rules(matrix) if rule.id not in disabled]


def evaluate(matrix: Matrix, envs: Iterable[str] | None = None) -> list[Violation]:
    """Every violation of a rule in force, environment by environment (all of them unless
    `envs`), each located where the offending value is written (through extends and
    templates), or where the missing key would go."""
    rules = in_force(matrix)
    found: list[Violation] = []
    for env in matrix.environments if envs is None else envs:
        model = matrix.environment(env)
        for rule in rules:
            if not rule.applies(matrix, env):
                continue
            for at, actual in paths.values(model, rule.path):
                if rule.holds(actual):
                    continue
                line = matrix.line_of(("environments", env, *at))
                found.append(
                    Violation(
                        env, rule, paths.text_of(at), _actual(at, actual), str(matrix.path), line
                    )
                )
    return found


def _actual(at: paths.Path, actual: Any) -> str:
    if actual is paths.MISSING:
        return "nothing (not set)"
    if any(part in _PRIVATE for part in at):
        return "a value not shown here (it may be a secret)"
    return shown(actual)


def refuse(matrix: Matrix, envs: Iterable[str] | None = None) -> None:
    """PolicyRefused (exit 3) listing every violation, if there is any."""
    found = evaluate(matrix, envs)
    if not found:
        return
    names = sorted({v.environment for v in found})
    who = (
        f"environment {names[0]!r} breaks"
        if len(names) == 1
        else f"environments {', '.join(map(repr, names))} break"
    )
    rules = {v.rule.id for v in found}
    example = found[0].rule.id
    raise PolicyRefused(
        f"policy refused: {who} {len(rules)} rule(s) ({len(found)} violation(s)):\n"
        + "\n".join(f"  {v.text()}" for v in found),
        hint=(
            "set the values the rules require, or switch a rule off with a reason: "
            f'`policies: {{disable: {{{example}: "<why it does not apply>"}}}}`; '
            "`envplane policies` lists the rules in force"
        ),
        violations=[violation_dict(v) for v in found],
    )


def violation_dict(v: Violation) -> dict[str, Any]:
    return {
        "environment": v.environment,
        "rule": v.rule.id,
        "key": v.key,
        "requires": v.rule.requires(),
        "actual": v.actual,
        "file": v.file,
        "line": v.line,
        "rule_source": v.rule.source,
        "description": v.rule.spec.description,
    }
