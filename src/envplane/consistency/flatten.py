"""One environment as flat settings: key path text -> value, and where to look the value up.

Matrix keys are the resolved `Environment` (after `extends:`, templates and the top-level
`services:`/`variables:`), walked to its leaves: `databases.primary.instance_class`,
`services.backend.env.API_KEY`. Lists of named things are aligned across environments:
clusters by position (`clusters[0]`: each environment's cluster is named after it, so names
never match), node groups by name (`clusters[0].node_groups[general-purpose].instance_type`:
a node group of another name is a real difference). A named list also yields one key for its
names (`clusters[0].node_groups` = the sorted names), so a group present in one environment
only is one difference, not one per field. Other lists (commands, canary steps) are values.

Rendered ConfigMap keys are `config.<configmap>.<key>`. They are rendered with stand-ins for
envplane's own per-environment placeholders (`{{ENVIRONMENT_NAME}}`, `{{NAMESPACE}}`, ports,
paths, URLs, the release version): every environment gets the same stand-in, so a value that
differs only through them compares equal, while the template's literal text and the matrix's
own `variables:` (values a person wrote) still differ where they do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from envplane.errors import MatrixError
from envplane.matrix import Matrix
from envplane.matrix.models import secret_looking
from envplane.matrix.yamlsafe import KeyPath
from envplane.render import templates
from envplane.render.local import local_variables, port_keys
from envplane.render.template_lines import key_lines

# Not settings: how the environment is built (`extends`, `template`), what it declares about
# parity itself, and the labels policies select it by.
_SKIPPED = frozenset({"extends", "template", "parity", "labels"})
# Lists aligned item by item: by the items' `name`, or (clusters) by position.
_BY_NAME = frozenset({"node_groups"})
_BY_POSITION = frozenset({"clusters"})
# Integer stand-ins for envplane's own numeric placeholders (ports): rendered as numbers (a
# port sits outside quotes in JSON), then replaced by the placeholder's name.
_NUMBER_BASE = 918_273_600
_MASK_KEY = secrets.token_bytes(32)
_STAND_IN_DIR = Path("/ENVPLANE_HOME/envs/{{ENVIRONMENT_NAME}}")


class Setting(NamedTuple):
    """One resolved value. `path` is its key path under `environments.<env>` (matrix keys);
    `file`/`line` are set for rendered ConfigMap keys (the template's)."""

    value: Any
    path: KeyPath | None = None
    file: str | None = None
    line: int | None = None
    item: str | None = None  # a field of a named list's item: the key of that list's names


def key_text(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def flatten(matrix: Matrix, env: str, *, config: bool = True) -> dict[str, Setting]:
    """Every setting of `env`: matrix keys, then (with `config`) rendered ConfigMap keys."""
    environment = matrix.environment(env)
    data = environment.model_dump(mode="json", exclude=set(_SKIPPED))
    out: dict[str, Setting] = {}
    _walk(data, (), "", env, out)
    if config:
        out.update(config_settings(matrix, env))
    return out


def _walk(
    value: Any,
    path: KeyPath,
    text: str,
    env: str,
    out: dict[str, Setting],
    item: str | None = None,
) -> None:
    if isinstance(value, dict) and value and set(value) != {"secret"}:
        # ({secret: NAME} is one value: the reference, compared and shown as such)
        for key, inner in value.items():
            _walk(inner, (*path, key), f"{text}.{key}" if text else key, env, out, item)
        return
    last = path[-1] if path else None
    if isinstance(value, list) and value and last in _BY_POSITION:
        for index, inner in enumerate(value):
            _walk(inner, (*path, index), f"{text}[{index}]", env, out, item)
        return
    if isinstance(value, list) and last in _BY_NAME:
        names = [item.get("name") for item in value if isinstance(item, dict)]
        out[text] = Setting(sorted(str(n) for n in names), path)
        for index, inner in enumerate(value):
            fields = {k: v for k, v in inner.items() if k != "name"}
            _walk(fields, (*path, index), f"{text}[{inner.get('name')}]", env, out, text)
        return
    if path[:1] == ("variables",) and len(path) == 2 and secret_looking(str(last)):
        value = _masked(value)
    if last == "name" and len(path) >= 2 and path[-3:-1][0] in _BY_POSITION:
        # A cluster named after its environment (the default `<project>-<env>`) is the same
        # name in every environment.
        value = _env_neutral(value, env)
    out[text] = Setting(value, path, item=item)


def _masked(value: Any) -> dict[str, str]:
    """A variable whose name says it is a secret: compared by a keyed digest (the key is new in
    every process, so the digest says nothing outside one report), never shown."""
    digest = hmac.new(_MASK_KEY, str(value).encode(), hashlib.sha256).hexdigest()[:16]
    return {"masked": digest}


def _env_neutral(value: Any, env: str) -> Any:
    """`env` as a whole word in `value` replaced by `{{ENVIRONMENT_NAME}}` (no regex: one is
    compiled per environment otherwise, a third of flattening 200 environments)."""
    if not isinstance(value, str) or env not in value:
        return value
    out, at = [], 0
    while (found := value.find(env, at)) >= 0:
        end = found + len(env)
        before = value[found - 1] if found else ""
        after = value[end] if end < len(value) else ""
        if not before.isalnum() and not after.isalnum():
            out.append(value[at:found] + "{{ENVIRONMENT_NAME}}")
        else:
            out.append(value[at:end])
        at = end
    return "".join(out) + value[at:]


def config_settings(matrix: Matrix, env: str) -> dict[str, Setting]:
    """`config.<configmap>.<key>` of `env`, rendered with stand-ins for envplane's own
    placeholders (module doc).

    Rendering is most of parity's time, so it is shared: when the templates use each of the
    matrix's variables only as a plain `{{NAME}}` (no filter, no `{% if %}` on it), they are
    rendered once with a stand-in for those too and each environment's values are put in the
    text afterwards (without the JSON escaping a real render adds: for comparing, the same
    values give the same text). Otherwise they are rendered per distinct set of values."""
    environment = matrix.environment(env)
    chosen = environment.template
    if chosen == env and not templates.template_dir(matrix.templates_dir, env).is_dir():
        return {}  # the default template (the env's own name) may be absent: no config
    variables, numbers = stand_in_variables(matrix, env)
    own = {k: v for k, v in matrix.variables_for(env).items() if variables.get(k) == v}
    if own and _plain_uses(matrix.templates_dir, chosen, tuple(sorted(own))):
        shared = {**variables, **{k: f"{{{{{k}}}}}" for k in own}}
        try:
            rendered = _rendered(
                matrix.templates_dir, chosen, tuple(sorted(shared.items())), tuple(numbers.items())
            )
        except MatrixError:
            pass  # a stand-in cannot stand where the value does (unquoted JSON): render apart
        else:
            return {key: _filled(setting, own) for key, setting in rendered}
    return dict(
        _rendered(
            matrix.templates_dir, chosen, tuple(sorted(variables.items())), tuple(numbers.items())
        )
    )


def _filled(setting: Setting, values: Mapping[str, str]) -> Setting:
    text = setting.value
    if isinstance(text, str) and "{{" in text:
        for name, value in values.items():
            text = text.replace(f"{{{{{name}}}}}", value)
    return Setting(text, setting.path, setting.file, setting.line, setting.item)


@lru_cache(maxsize=256)
def _plain_uses(root: Path, template: str, names: tuple[str, ...]) -> bool:
    """Whether the template files' Jinja constructs mention each of `names` only as a plain
    `{{NAME}}` (not in a `{% %}` statement, not with a filter or in an expression)."""
    wanted = set(names)
    for path in templates.template_files(root, template):
        text = path.read_text(encoding="utf-8")
        for match in _JINJA.finditer(text):
            inner = match.group(1) if match.group(1) is not None else match.group(2)
            words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", inner)) & wanted
            plain = match.group(1) is not None and inner.strip(" -") in wanted
            if words and not plain:
                return False
    return True


_JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)


def stand_in_variables(matrix: Matrix, env: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The variables config templates are rendered with for comparison: the matrix's own
    `variables:` as they are (but one whose name says it is a secret), every other (envplane's
    own) as `{{NAME}}`; a number as a large
    stand-in number (returned with the name it is turned back into), a JSON literal
    (`POSTGRES_SSL: false`) as it is: both must stay valid where JSON expects them."""
    ports = {key: 0 for key in port_keys(matrix, env)}
    real = local_variables(matrix, env, _STAND_IN_DIR, ports)
    own = matrix.variables_for(env)
    out: dict[str, Any] = {}
    numbers: dict[str, str] = {}
    for name in sorted(real):
        value = real[name]
        if name in own and not secret_looking(name):
            out[name] = value
        elif isinstance(value, int) and not isinstance(value, bool):
            stand_in = _NUMBER_BASE + len(numbers)
            numbers[str(stand_in)] = f"{{{{{name}}}}}"
            out[name] = stand_in
        elif isinstance(value, str) and value in ("true", "false", "null"):
            out[name] = value
        else:
            out[name] = f"{{{{{name}}}}}"
    return out, numbers


@lru_cache(maxsize=256)
def _rendered(
    root: Path,
    template: str,
    variables: tuple[tuple[str, Any], ...],
    numbers: tuple[tuple[str, str], ...],
) -> tuple[tuple[str, Setting], ...]:
    files = templates.template_files(root, template)
    out: list[tuple[str, Setting]] = []
    for cm in templates.render_config_maps(files, dict(variables)):
        lines = key_lines(Path(cm.source), cm.name)
        for key, value in cm.data.items():
            for number, name in numbers:
                value = value.replace(number, name)
            out.append((f"config.{cm.name}.{key}", Setting(value, None, cm.source, lines.get(key))))
    return tuple(out)
