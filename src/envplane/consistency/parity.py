"""Parity: every resolved setting across environments, each difference classified.

A difference is **scale** (a key expected to differ by size: the default patterns below, edited
by `parity: {scale: {add, remove}}`), **declared** (`parity: {allow: {PATTERN: REASON}}`, at the
top level for every environment or under one environment for its own differences), or
**undeclared** (the report's exit 1). A key set in some environments and not in others is never
scale: a missing cache or node group is a difference of shape, not of size.

Patterns are key paths where `*` matches any run of characters (dots and brackets included) and
nothing else is special: `services.*.replicas`, `clusters[0].node_groups*`. An `allow` pattern
that matches no key of any environment is an error at its line (exit 2): a stale declaration
would otherwise silently excuse the next difference that happens to match it, the way
Terraform refuses a value for a variable it does not declare.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple

from envplane.consistency.flatten import Setting, flatten
from envplane.matrix import Matrix
from envplane.matrix.vocab import suggest

Kind = Literal["equal", "scale", "declared", "undeclared"]
NOT_SET = None  # a key absent from an environment: shown as "(not set)"

DEFAULT_SCALE: tuple[str, ...] = (
    "clusters[*].node_groups[*].instance_type",
    "clusters[*].node_groups[*].min_size",
    "clusters[*].node_groups[*].max_size",
    "clusters[*].node_groups[*].desired_size",
    "databases.primary.instance_class",
    "databases.primary.backup_retention",
    "databases.cache.node_type",
    "databases.cache.num_cache_nodes",
    "networking.availability_zones",
    "networking.public_subnets",
    "networking.private_subnets",
    "networking.nat_gateways",
    "services.*.replicas",
    "services.*.cpu",
    "services.*.memory",
)


class Where(NamedTuple):
    file: str
    line: int | None
    written: bool = True  # False: a default (the line is where it would be written)


class Cell(NamedTuple):
    value: Any
    present: bool
    where: Where | None


@dataclass(frozen=True)
class Row:
    key: str
    kind: Kind
    cells: dict[str, Cell]
    reason: str | None = None  # declared: the declaration's reason; scale: the pattern


@dataclass
class ParityReport:
    environments: list[str]
    rows: list[Row] = field(default_factory=list)
    source: str = "matrix"  # or "live"
    not_created: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"equal": 0, "scale": 0, "declared": 0, "undeclared": 0}
        for row in self.rows:
            out[row.kind] += 1
        return out

    @property
    def ok(self) -> bool:
        return not any(r.kind == "undeclared" for r in self.rows)


def pattern(text: str) -> re.Pattern[str]:
    return _compiled(text)


@lru_cache(maxsize=1024)
def _compiled(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))


def scale_patterns(matrix: Matrix) -> list[str]:
    edits = matrix.spec.parity.scale
    return [p for p in DEFAULT_SCALE if p not in edits.remove] + list(edits.add)


def parity(matrix: Matrix, envs: list[str] | None = None) -> ParityReport:
    """The matrix's parity report over `envs` (default: the pipeline's, else every one)."""
    chosen = chosen_environments(matrix, envs)
    flat = {env: flatten(matrix, env) for env in matrix.environments}
    check_declarations(matrix, flat)
    settings = {env: flat[env] for env in chosen}
    return compare(matrix, chosen, settings, lambda env, s: matrix_where(matrix, env, s))


def chosen_environments(matrix: Matrix, envs: list[str] | None) -> list[str]:
    if envs:
        for env in envs:
            matrix.environment(env)  # UnknownEnvironment (exit 2) with a suggestion
        return list(dict.fromkeys(envs))
    return matrix.pipeline() or list(matrix.environments)


def compare(
    matrix: Matrix,
    envs: list[str],
    settings: dict[str, dict[str, Setting]],
    where: Any,
) -> ParityReport:
    """Rows of `settings` (env -> key -> Setting) classified; `where(env, setting)` locates one."""
    keys: dict[str, None] = {}
    for env in envs:
        keys.update(dict.fromkeys(settings[env]))
    scale = [(p, pattern(p)) for p in scale_patterns(matrix)]
    allows = _allows(matrix, envs)
    report = ParityReport(list(envs))
    for key in keys:
        present = {env: key in settings[env] for env in envs}
        values = [settings[env][key].value if present[env] else NOT_SET for env in envs]
        first = values[0]
        if all(present.values()) and all(v == first for v in values[1:]):
            kind: Kind = "equal"
            reason = None
            cells = {env: Cell(settings[env][key].value, True, None) for env in envs}
            report.rows.append(Row(key, kind, cells))
            continue
        if not all(present.values()) and _item_of(settings, envs, key) is not None:
            continue  # a named item missing somewhere: its list's names row says so
        cells = {
            env: Cell(
                settings[env][key].value if present[env] else NOT_SET,
                present[env],
                where(env, settings[env][key]) if present[env] else None,
            )
            for env in envs
        }
        kind, reason = _classify(key, all(present.values()), scale, allows)
        report.rows.append(Row(key, kind, cells, reason))
    return report


def _item_of(settings: dict[str, dict[str, Setting]], envs: list[str], key: str) -> str | None:
    for env in envs:
        if key in settings[env]:
            return settings[env][key].item
    return None


def _classify(
    key: str,
    everywhere: bool,
    scale: list[tuple[str, re.Pattern[str]]],
    allows: list[tuple[re.Pattern[str], str]],
) -> tuple[Kind, str | None]:
    for regex, reason in allows:
        if regex.fullmatch(key):
            return "declared", reason
    if everywhere:
        for text, regex in scale:
            if regex.fullmatch(key):
                return "scale", text
    return "undeclared", None


def _allows(matrix: Matrix, envs: list[str]) -> list[tuple[re.Pattern[str], str]]:
    out = [(pattern(p), reason) for p, reason in matrix.spec.parity.allow.items()]
    for env in envs:
        own = matrix.environment(env).parity
        for p, reason in (own.allow if own else {}).items():
            out.append((pattern(p), f"{env}: {reason}"))
    return out


def check_declarations(matrix: Matrix, flat: dict[str, dict[str, Setting]]) -> None:
    """Every `allow` pattern matches a key of some environment (module doc): else exit 2 at
    the pattern's line, with the closest key as a suggestion."""
    keys: set[str] = set()
    for settings in flat.values():
        keys.update(settings)
    declared: list[tuple[tuple[str | int, ...], str]] = [
        (("parity", "allow", p), p) for p in matrix.spec.parity.allow
    ]
    for env, environment in matrix.environments.items():
        for p in environment.parity.allow if environment.parity else {}:
            declared.append((("environments", env, "parity", "allow", p), p))
    for text in matrix.spec.parity.scale.remove:
        if text not in DEFAULT_SCALE:
            raise matrix.error_at(
                ("parity", "scale", "remove"),
                f"{text!r} is not one of the default scale keys{suggest(text, DEFAULT_SCALE)}",
                "the defaults: " + ", ".join(DEFAULT_SCALE),
            )
    for at, text in declared:
        regex = pattern(text)
        if not any(regex.fullmatch(k) for k in keys):
            raise matrix.error_at(
                at,
                f"parity allows {text!r}, which matches no setting of any environment"
                f"{suggest(text, keys)}",
                "remove the stale declaration, or fix its key path (`envplane parity --all` "
                "lists every key)",
            )


def matrix_where(matrix: Matrix, env: str, setting: Setting) -> Where:
    if setting.file is not None:
        return Where(relative(matrix, setting.file), setting.line)
    path = ("environments", env, *(setting.path or ()))
    _source, written = matrix.source_of(path)
    return Where(relative(matrix, str(matrix.path)), matrix.line_of(path), written)


def relative(matrix: Matrix, file: str) -> str:
    """A file as the project names it (`config/environment-matrix.yaml`), the same on every
    checkout: reports are pasted into pull requests and compared by CI."""
    return _relative(_root(str(matrix.path)), file)


@lru_cache(maxsize=64)
def _root(matrix_path: str) -> str:
    parent = Path(matrix_path).absolute().parent
    return str(parent.parent if parent.name == "config" else parent)  # as render's project_root


@lru_cache(maxsize=1024)
def _relative(root: str, file: str) -> str:
    try:
        return Path(file).absolute().relative_to(root).as_posix()
    except ValueError:
        return file
