"""Every layer that sets one key of one environment, in the order they apply.

`inherit.resolve` keeps only the last writer of each value (enough to place an error); explain
needs them all, so this walks the raw document the way `resolve` merges it: the `extends:`
chain from its root (a template or another environment) to the environment itself, each a
deep merge where the child wins and lists are replaced whole; for `services` and `variables`,
the top-level section first, under everything the chain writes. A key no layer writes has the
model's default (or envplane's: a cluster's name and region are filled in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envplane.matrix.yamlsafe import KeyPath

if TYPE_CHECKING:
    from envplane.matrix.loader import Matrix

_MISSING = object()
_TOP_LEVEL = ("services", "variables")


@dataclass(frozen=True)
class Layer:
    """One layer's word on the key: `kind` is template | extends | top-level | environment |
    default; `source` the raw document path it is written at (None for a default)."""

    kind: str
    name: str
    value: Any
    source: KeyPath | None
    line: int | None


def chain_of(matrix: Matrix, env: str) -> list[KeyPath]:
    """The layers of `env`'s `extends:` chain, root first, the environment last."""
    raw = matrix.raw
    envs: dict[str, Any] = raw.get("environments") or {}
    templates: dict[str, Any] = raw.get("templates") or {}
    chain: list[KeyPath] = [("environments", env)]
    body = envs.get(env) or {}
    while isinstance(body, dict) and isinstance(body.get("extends"), str):
        parent = str(body["extends"])
        where: KeyPath = ("environments", parent) if parent in envs else ("templates", parent)
        if where in chain:
            break  # refused on load already; never loop here
        chain.append(where)
        body = (envs if where[0] == "environments" else templates).get(parent) or {}
    return list(reversed(chain))


def _at(doc: Any, path: KeyPath) -> Any:
    current = doc
    for part in path:
        if isinstance(part, int):
            if not isinstance(current, list) or not -len(current) <= part < len(current):
                return _MISSING
            current = current[part]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def layers_of(matrix: Matrix, env: str, path: KeyPath) -> list[Layer]:
    """Each layer that writes `path` (a key path under the resolved environment), in order;
    the last is the one whose value the environment has. A layer is listed if it writes the
    key or any ancestor of it whole (a list, a value replacing a mapping)."""
    raw = matrix.raw
    layers: list[Layer] = []
    if path and path[0] in _TOP_LEVEL:
        value = _at(raw, path)
        if value is not _MISSING:
            layers.append(
                Layer("top-level", f"top-level `{path[0]}:`", value, path, _line(matrix, path))
            )
    chain = chain_of(matrix, env)
    for where in chain:
        value = _at(_at(raw, where), path)
        if value is _MISSING:
            continue
        source = (*where, *path)
        if where == chain[-1]:
            kind, name = "environment", f"environment {env}"
        elif where[0] == "templates":
            kind, name = "template", f"template {where[1]}"
        else:
            kind, name = "extends", f"extends {where[1]}"
        layers.append(Layer(kind, name, value, source, _line(matrix, source)))
    return layers


def _line(matrix: Matrix, source: KeyPath) -> int | None:
    for cut in range(len(source), 0, -1):
        line = matrix.line_at(source[:cut])
        if line is not None:
            return line
    return None
