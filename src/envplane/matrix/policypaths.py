"""Key paths of an environment, for policies: parsed, checked against the `Environment` model
(so a rule on a key no environment can have is refused when the matrix loads), and followed
through an environment's values.

A path is dotted keys (`databases.primary.multi_az`); a list item is `[N]` (`clusters[0].name`)
and `*` stands for every key of a mapping or every item of a list (`services.*.replicas`).
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from envplane.matrix.models import Environment

ANY = "*"
Part = str | int
Path = tuple[Part, ...]
_SEGMENT = re.compile(r"^(?P<name>[A-Za-z0-9_-]+|\*)?(?P<index>(?:\[(?:\d+|\*)\])*)$")
_INDEX = re.compile(r"\[(\d+|\*)\]")


class PathProblem(ValueError):
    """Why a key path is not one of an environment's (the message names where it stops)."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""A value the environment does not have (its section or key is not written anywhere)."""


@dataclass(frozen=True)
class Leaf:
    """What a key path ends on: the field's annotation (to check a rule's value against), and
    whether it is a section (a model, mapping or list: only present/absent apply)."""

    annotation: Any
    section: bool

    def base(self) -> Any:
        """The annotation without Annotated[...] and without `| None`."""
        return _strip(self.annotation)

    def numeric(self) -> bool:
        return self.base() in (int, float)

    def choices(self) -> tuple[Any, ...]:
        base = self.base()
        return get_args(base) if get_origin(base) is Literal else ()


def parse(text: str) -> Path:
    """`clusters[0].node_groups.*.min_size` -> ('clusters', 0, 'node_groups', '*', 'min_size')."""
    parts: list[Part] = []
    for segment in text.split("."):
        match = _SEGMENT.fullmatch(segment)
        if not segment or match is None or (match["name"] is None and not parts):
            raise PathProblem(
                f"{text!r} is not a key path: dotted keys, `[N]` for a list item and `*` for "
                "every item, like 'databases.primary.multi_az' or 'services.*.replicas'"
            )
        if match["name"] is not None:
            parts.append(match["name"])
        parts += [ANY if i == ANY else int(i) for i in _INDEX.findall(match["index"])]
    return tuple(parts)


def leaf(path: Path) -> Leaf:
    """The field `path` ends on in the Environment model; PathProblem if there is none."""
    current: Any = Environment
    walked: list[Part] = []
    for part in path:
        tp = _strip(current)
        model = _model_in(tp)
        origin = get_origin(tp)
        if model is not None:
            field = model.model_fields.get(str(part)) if isinstance(part, str) else None
            if field is None or part == ANY:
                where = f"under {text_of(tuple(walked))}" if walked else "in an environment"
                keys = ", ".join(model.model_fields)
                raise PathProblem(f"no key {part!r} {where} (keys there: {keys})")
            current = field.annotation
        elif origin is dict:
            if isinstance(part, int):
                raise PathProblem(
                    f"{text_of(tuple(walked))} is a mapping: name a key, not [{part}]"
                )
            current = get_args(tp)[1]
        elif origin is list:
            if isinstance(part, str) and part != ANY:
                raise PathProblem(
                    f"{text_of(tuple(walked))} is a list: use [N] or * for its items, not {part!r}"
                )
            current = get_args(tp)[0]
        else:
            raise PathProblem(f"{text_of(tuple(walked))} is a value: it has no key {part!r}")
        walked.append(part)
    tp = _strip(current)
    section = _model_in(tp) is not None or get_origin(tp) in (dict, list)
    return Leaf(current, section)


def values(env: Environment, path: Path) -> list[tuple[Path, Any]]:
    """Each value at `path` in `env` with its concrete path (`*` expanded); a part that is not
    there gives MISSING at the path written so far plus the rest (so the violation can name
    the key the rule wanted)."""
    found: list[tuple[Path, Any]] = []

    def walk(node: Any, at: Path, rest: Path) -> None:
        if not rest:  # an empty list or mapping (no clusters, no services) has nothing
            found.append((at, MISSING if node is None or node == [] or node == {} else node))
            return
        part, more = rest[0], rest[1:]
        if node is None:
            found.append(((*at, *rest), MISSING))
            return
        if isinstance(node, BaseModel):
            walk(getattr(node, str(part)), (*at, part), more)
        elif isinstance(node, dict):
            if part == ANY:
                for key, value in node.items():
                    walk(value, (*at, key), more)
            else:
                walk(node.get(part), (*at, part), more)
        elif isinstance(node, list):
            if part == ANY:
                for i, value in enumerate(node):
                    walk(value, (*at, i), more)
            else:
                assert isinstance(part, int)  # leaf() allows only [N] or * on a list
                walk(node[part] if part < len(node) else None, (*at, part), more)

    walk(env, (), path)
    return found


def text_of(path: Path) -> str:
    """('clusters', 0, 'name') -> 'clusters[0].name'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _strip(tp: Any) -> Any:
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType):
            rest = [a for a in get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _model_in(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    return None
