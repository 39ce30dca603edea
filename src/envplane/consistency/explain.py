"""`envplane explain ENV KEY.PATH`: the value and every layer that set or overrode it.

Matrix keys: the layers of `matrix.provenance` (templates, `extends` steps, the top-level
`services:`/`variables:`, the environment's own key), or envplane's default when none writes
it; for an environment the store records as a clone (not in the file), its recorded overrides
come last. Rendered ConfigMap keys (`config.<configmap>.<key>`): the template file and line,
and the variables the key's text uses, each with where it is set. A variable's value is shown
unless its name says it is a secret (`secret_looking`); a service env value that is a secret
reference is shown as the reference, never resolved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envplane.consistency.flatten import Setting, flatten
from envplane.consistency.parity import relative
from envplane.consistency.parity_output import shown
from envplane.desired import matrix_for
from envplane.errors import BadInput
from envplane.matrix.models import secret_looking
from envplane.matrix.provenance import layers_of
from envplane.matrix.vocab import suggest
from envplane.render.template_lines import key_lines
from envplane.render.variables import base_variables

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.workspace import Workspace

_PLACEHOLDER = re.compile(r"\{\{-?\s*([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class ExplainedLayer:
    kind: str  # default | template | extends | top-level | environment | clone
    name: str
    shown: str
    file: str | None
    line: int | None
    wins: bool = False


@dataclass(frozen=True)
class UsedVariable:
    name: str
    shown: str
    origin: str  # "matrix" (a `variables:` value) or "envplane" (set per environment)
    file: str | None = None
    line: int | None = None


@dataclass
class Explanation:
    environment: str
    key: str
    shown: str
    layers: list[ExplainedLayer] = field(default_factory=list)
    variables: list[UsedVariable] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "key": self.key,
            "value": self.shown,
            "layers": [
                {
                    "kind": layer.kind,
                    "name": layer.name,
                    "value": layer.shown,
                    "file": layer.file,
                    "line": layer.line,
                    "wins": layer.wins,
                }
                for layer in self.layers
            ],
            "variables": [
                {
                    "name": v.name,
                    "value": v.shown,
                    "origin": v.origin,
                    "file": v.file,
                    "line": v.line,
                }
                for v in self.variables
            ],
        }


def explain_key(ws: Workspace, env: str, key: str) -> Explanation:
    matrix = matrix_for(ws, env)
    matrix.environment(env)  # UnknownEnvironment (exit 2) with a suggestion
    clone = env not in ws.matrix.environments
    return explain_in(matrix, env, key, clone=clone)


def explain_in(matrix: Matrix, env: str, key: str, *, clone: bool = False) -> Explanation:
    """`clone`: `env` is not in the file but built from the store's record of it (its
    `extends` and overrides): its own layer is the recorded overrides."""
    settings = flatten(matrix, env)
    if key not in settings:
        raise BadInput(
            f"{env} has no setting {key!r}{suggest(key, settings)}",
            hint=f"`envplane parity {env} --all` lists every key of {env}",
        )
    setting = settings[key]
    if setting.path is None:
        return _config_key(matrix, env, key, setting)
    return _matrix_key(matrix, env, key, setting, clone)


def _matrix_key(matrix: Matrix, env: str, key: str, setting: Setting, clone: bool) -> Explanation:
    assert setting.path is not None
    file = relative(matrix, str(matrix.path))
    out = Explanation(env, key, _shown(key, setting.value))
    found = layers_of(matrix, env, setting.path)
    if not found:
        out.layers.append(ExplainedLayer("default", "envplane default", out.shown, None, None))
    for layer in found:
        value = layer.value
        if clone and layer.kind == "environment":
            out.layers.append(
                ExplainedLayer(
                    "clone", f"{env}'s recorded overrides", _shown(key, value), "state store", None
                )
            )
            continue
        out.layers.append(
            ExplainedLayer(layer.kind, layer.name, _shown(key, value), file, layer.line)
        )
    last = out.layers[-1]
    out.layers[-1] = ExplainedLayer(last.kind, last.name, last.shown, last.file, last.line, True)
    return out


def _shown(key: str, value: Any) -> str:
    parts = key.split(".")
    if "variables" in parts[:1] and secret_looking(parts[-1]):
        return "(secret, not shown)"
    return shown(value)  # a secret reference is shown as `{secret: NAME}`, never resolved


def _config_key(matrix: Matrix, env: str, key: str, setting: Setting) -> Explanation:
    out = Explanation(env, key, setting.value)
    file = relative(matrix, setting.file or "")
    out.layers.append(
        ExplainedLayer(
            "template",
            f"template {matrix.environment(env).template}",
            setting.value,
            file,
            setting.line,
            True,
        )
    )
    own = matrix.variables_for(env)
    known = base_variables(matrix, env)  # envplane's that do not depend on where it runs
    for name in _used(setting, key):
        if name in own:
            layers = layers_of(matrix, env, ("variables", name))
            line = layers[-1].line if layers else None
            value = "(secret, not shown)" if secret_looking(name) else own[name]
            out.variables.append(
                UsedVariable(name, value, "matrix", relative(matrix, str(matrix.path)), line)
            )
        elif name in known:
            out.variables.append(UsedVariable(name, str(known[name]), "envplane"))
        else:  # a port, a path, a URL: allocated when the environment is created
            out.variables.append(UsedVariable(name, "set by envplane per environment", "envplane"))
    return out


def _used(setting: Setting, key: str) -> list[str]:
    """Placeholders in the template text of the key: its line up to the next key of the same
    ConfigMap (a block scalar spans several lines)."""
    if setting.file is None or setting.line is None:
        return []
    name = key.split(".", 2)[1]
    starts = sorted(key_lines(Path(setting.file), name).values())
    later = [n for n in starts if n > setting.line]
    lines = Path(setting.file).read_text(encoding="utf-8").splitlines()
    end = later[0] - 1 if later else len(lines)
    # the last key of a ConfigMap ends at the next document
    text_lines = lines[setting.line - 1 : end]
    for n, line in enumerate(text_lines):
        if line.startswith("---"):
            text_lines = text_lines[:n]
            break
    return list(dict.fromkeys(_PLACEHOLDER.findall("\n".join(text_lines))))
