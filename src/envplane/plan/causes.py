"""The matrix line behind each field a plan changes (`plan` prints it, the plan JSON carries it).

A resource's spec field is traced back to the matrix key (or config template line) it is
rendered from: a service's `replicas`/`ports` to `services.<name>.replicas`, its `env.X` to
`services.<name>.env.X` or, for a ConfigMap value the service reads, the template's line; a
config file `files.<configmap>/<key>` to its template line; PostgreSQL's `version` to
`databases.primary.version`. The matrix line is where the value is written for this environment
(a template's or a parent's line when it is inherited). A field with no such origin (a port
envplane allocates, the interpreter's path) has no cause.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from envplane.matrix.locate import key_text
from envplane.matrix.models import Service
from envplane.plan.model import Cause, Change, Plan, Step
from envplane.render import templates
from envplane.render.template_lines import key_lines

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.matrix.yamlsafe import KeyPath

_SERVICE_FIELDS = frozenset(Service.model_fields)
_BY_KIND: dict[tuple[str, str], tuple[str, ...]] = {
    ("postgres", "version"): ("databases", "primary", "version"),
    ("storage", "versioning"): ("storage", "versioning"),
}


def with_causes(plan: Plan, matrix: Matrix, env: str) -> Plan:
    """`plan` with a cause on every change whose origin can be found."""
    if env not in matrix.environments:
        return plan
    steps: list[Step] = []
    for step in plan.steps:
        if not step.changes:
            steps.append(step)
            continue
        changes = tuple(_caused(matrix, env, step, change) for change in step.changes)
        steps.append(replace(step, changes=changes))
    return replace(plan, steps=tuple(steps))


def _caused(matrix: Matrix, env: str, step: Step, change: Change) -> Change:
    try:
        cause = cause_of(matrix, env, step.kind, step.name, change.path)
    except (OSError, ValueError):
        cause = None  # a template gone since: the change stands without its cause
    return replace(change, cause=cause) if cause is not None else change


def cause_of(matrix: Matrix, env: str, kind: str, name: str, path: str) -> Cause | None:
    root, _, rest = path.partition(".")
    root = root.split("[", 1)[0]
    if kind == "config" and root == "files" and "/" in rest:
        config_map, key = rest.split("/", 1)
        return template_cause(matrix, env, config_map, key)
    if kind == "service":
        service = matrix.services_for(env).get(name)
        if service is None:
            return None
        if root == "env":
            if rest in service.env:
                return matrix_cause(matrix, env, ("services", name, "env", rest))
            return template_cause(matrix, env, "app-config", rest)
        if root in ("replicas", "ports"):
            return matrix_cause(matrix, env, ("services", name, "replicas"))
        if root in _SERVICE_FIELDS and root not in ("env", "versions"):
            return matrix_cause(matrix, env, ("services", name, root))
        return None
    at = _BY_KIND.get((kind, root))
    return matrix_cause(matrix, env, at) if at is not None else None


def matrix_cause(matrix: Matrix, env: str, path: KeyPath) -> Cause | None:
    full = ("environments", env, *path)
    source, written = matrix.source_of(full)
    line = matrix.line_of(full)
    if line is None:
        return None
    where = key_text(source) if written else f"{key_text(full)} (default)"
    return Cause(_shown(matrix, matrix.path), line, where)


def template_cause(matrix: Matrix, env: str, config_map: str, key: str) -> Cause | None:
    template = matrix.environment(env).template
    folder = templates.template_dir(matrix.templates_dir, template)
    if not folder.is_dir():
        return None
    for file in templates.template_files(matrix.templates_dir, template):
        line = key_lines(file, config_map).get(key)
        if line is not None:
            return Cause(_shown(matrix, file), line, f"config.{config_map}.{key}")
    return None


def _shown(matrix: Matrix, file: Path) -> str:
    parent = Path(matrix.path).absolute().parent
    root = parent.parent if parent.name == "config" else parent
    try:
        return Path(file).absolute().relative_to(root).as_posix()
    except ValueError:
        return str(file)
