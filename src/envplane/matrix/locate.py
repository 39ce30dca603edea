"""From a key path (or a pydantic error) to a MatrixError naming file, line and key."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from envplane.errors import MatrixError
from envplane.matrix.inherit import Trace, lookup
from envplane.matrix.vocab import suggest
from envplane.matrix.yamlsafe import KeyPath, SourceMap

_PRIVATE_KEYS = {"variables", "env"}  # values there may be secrets: never echoed
_SET_AT = " (set at "


def key_text(path: KeyPath) -> str:
    """('environments', 'dev', 'clusters', 0, 'name') -> 'environments.dev.clusters[0].name'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class Locator:
    def __init__(self, filename: str, lines: SourceMap, trace: Trace | None = None) -> None:
        self.filename = filename
        self.lines = lines
        self.trace = trace if trace is not None else Trace.at(())

    def source(self, path: KeyPath) -> tuple[KeyPath, bool]:
        """Where `path` is written in the file, and whether it is: a key written in no layer
        is placed where its mapping is first declared (a top-level service's key under
        `services.<name>`, not under an environment's override or copy of it)."""
        source = lookup(self.trace.origin, path)
        if source in self.lines or not path:
            return source, True
        parent = path[:-1]
        if parent in self.trace.bases:
            return (*self.trace.bases[parent], path[-1]), False
        return source, False

    def line(self, path: KeyPath) -> int | None:
        """Line of the resolved `path`, or of its nearest ancestor written in the file."""
        return self._written_line(self.source(path)[0])

    def _written_line(self, source: KeyPath) -> int | None:
        for cut in range(len(source), 0, -1):
            if source[:cut] in self.lines:
                return self.lines[source[:cut]]
        return None

    def error(
        self, path: KeyPath, message: str, hint: str | None = None, *, about: str | None = None
    ) -> MatrixError:
        """A MatrixError at `path`; a key written in no layer is reported where it would be
        written. `about`: a rule of the mapping at `path` about that key of it (a service's
        `command`): reported at the key if it is written somewhere, else at the mapping
        where the key would be added (the top-level service, not an environment's copy)."""
        if about is not None:
            source, written = self.source((*path, about))
            if written:
                return self.error((*path, about), message, hint)
            return self._error(source[:-1], source[:-1], message, hint)
        source, written = self.source(path)
        if not written:
            return self._error(source, source, message, hint)
        if source[: len(path)] != path and source:
            message = f"{message}{_SET_AT}{key_text(source)})"
        return self._error(path, source, message, hint)

    def _error(self, key: KeyPath, source: KeyPath, message: str, hint: str | None) -> MatrixError:
        return MatrixError(
            message,
            file=self.filename,
            line=self._written_line(source) or 1,
            key=key_text(key) or None,
            hint=hint,
        )

    def from_validation(
        self,
        exc: ValidationError,
        model: type[BaseModel],
        base: KeyPath = (),
        skip: frozenset[str] = frozenset(),
    ) -> list[MatrixError]:
        found: list[MatrixError] = []
        errors = [(e, tuple(p for p in e["loc"] if p != "[key]")) for e in exc.errors()]
        # A misspelt key also shows up as a missing one; the misspelling is the news.
        misspelt = {loc[:-1] for e, loc in errors if e["type"] == "extra_forbidden"}
        for err, loc in errors:
            if err["type"] in skip or (err["type"] == "missing" and loc[:-1] in misspelt):
                continue
            about = (err.get("ctx") or {}).get("key")  # a model-level rule about one key
            message, hint = _explain(err, model, loc)
            found.append(
                self.error(
                    (*base, *loc), message, hint, about=about if isinstance(about, str) else None
                )
            )
        return found


def first_of(errors: list[MatrixError]) -> MatrixError:
    """The earliest problem in the file, saying how many others there are."""
    unique: dict[tuple[int | None, str], MatrixError] = {}
    # One wrong value inherited by three environments is one problem, shown where it is written.
    for error in sorted(errors, key=lambda e: (e.line or 0, _SET_AT in e.detail)):
        unique.setdefault((error.line, error.detail.split(_SET_AT)[0]), error)
    ordered = list(unique.values())
    first = ordered[0]
    if len(ordered) > 1:
        more = f"{len(ordered) - 1} more problem(s) in this file"
        first.hint = f"{first.hint}; {more}" if first.hint else more
    return first


def _explain(err: Any, model: type[BaseModel], loc: KeyPath) -> tuple[str, str | None]:
    kind, msg, value = err["type"], str(err["msg"]), err.get("input")
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        return (
            f"unknown key {loc[-1]!r}{suggest(loc[-1], allowed)}",
            f"allowed here: {', '.join(allowed)}" if allowed else None,
        )
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing", None
    if kind in ("value_error", "assertion_error"):
        return msg.removeprefix("Value error, ").removeprefix("Assertion failed, "), None
    if kind == "cross_field":
        return msg, None
    shown = _shown(value, loc)
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))
        expected = msg.removeprefix("Input should be ")
        return f"expected {expected}, got {shown}{suggest(value, choices)}", None
    if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
        if any(part in _PRIVATE_KEYS for part in loc):
            return "expected text, got a number", "put the value in quotes"
        return f"expected text, got the number {shown}", f'quote it: "{value}"'
    return f"{msg[:1].lower()}{msg[1:]}, got {shown}", None


def _shown(value: Any, loc: KeyPath) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if any(part in _PRIVATE_KEYS for part in loc):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _fields_at(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys the model allows at `loc`, for 'did you mean'."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return []
            current = field.annotation
        elif get_origin(current) in (dict, list):
            current = get_args(current)[-1]
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or name for name, f in current.model_fields.items()]  # as written
    return []


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (Union, types.UnionType):
        models = [a for a in get_args(tp) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if models else tp
    return tp
