"""The template sandbox: Jinja2 with bounds, a loader shut in the template directory, and every
placeholder's output kept apart from the template's own text.

What a template may do: variables, filters, tests, `{% if %}`, `{% for %}`, macros, and
`{% include %}`/`{% import %}`/`{% extends %}` of files inside its own template directory
(`templates/environments/<name>/`). What it may not: Python internals (the sandbox refuses
`''.__class__` and the like), modifying lists and dicts, files outside that directory, and
work past the bounds below. Each refusal is a `MatrixError` at the template's file and line
(exit 2), never a crash.

Bounds, per rendered file (module constants, so a test can lower them):

- `MAX_TEMPLATE_BYTES`: a template file, or one it includes;
- `MAX_OUTPUT_CHARS`: the rendered file, and any one value a template builds on the way
  (`'a' * n`, `x | center(n)`, `'%999999999d' % 1`, `s.ljust(n)`, `sep.join(xs)`, ...: sizes
  are checked before the operation, so nothing large is ever allocated);
- `MAX_RANGE`: items of one `range()`;
- `MAX_STEPS`: loop iterations, calls and includes;
- `MAX_WORK_CHARS`: characters of every string built, plus the template text that loops,
  macros and includes repeat (a loop of literal text inside `{% set %}` counts too);
- `MAX_RENDER_SECONDS`: wall-clock time, checked at every output, call, attribute, operator,
  filter, include and loop iteration;
- `MAX_INT_BITS`: integers a template computes (`9 ** 999999999` is refused before it starts).

Placeholders are data. In "slots" mode (config templates), the output of every `{{ … }}` is
recorded as a `Slot` and the template's text gets a token instead: `q` + `v` + 16 random hex
digits + `n` + the slot's index + `q`, letters and digits only, so it is one plain word in any
YAML or JSON context and cannot change how the text parses. `render.values` parses the text
with the tokens in place (the structure, fixed by the template alone) and then puts each
slot's value into the scalars that hold its token. Template text stays structure: literal
text, included files, and the results of macros, `caller()`, `self.<block>()` and recursive
`loop()` (their own placeholders are tokens already, so such a result holds no value). Whatever
else a `{{ }}` outputs is one value: a variable, a filter's result, a `{% filter %}` block, text
captured with `{% set %}…{% endset %}`. Filters, tests, calls, operators and comparisons see
the real text (tokens resolved; `==`, `!=` and `in` on a macro's result too), so
`{{ captured | js }}` escapes the values, not the tokens, and their results can only reach the
output as values. The tokens are random per render, so no value can forge one.
"""

from __future__ import annotations

import functools
import re
import secrets
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment

from envplane.errors import MatrixError
from envplane.render.sandbox import limits
from envplane.render.sandbox.checks import _check_binop, _check_call, _checked
from envplane.render.sandbox.escapes import js_string, json_literal
from envplane.render.sandbox.filters import (
    _bounded_range,
    _charge_filter,
    _concat_filter,
    _data_filter,
    _finalize,
    _guarded,
    _guarded_test,
    _loop_filter,
    _resolve_filter,
)
from envplane.render.sandbox.limits import (
    BOUNDS_HINT,
    IncludeRefused,
    TemplateBound,
    TemplateUnreadable,
    _too_big,
)
from envplane.render.sandbox.loader import _compiled, _DirectoryLoader
from envplane.render.sandbox.state import (
    _CURRENT,
    Rendered,
    Slot,
    _real,
    _Render,
    _state,
    _TemplateText,
)
from envplane.render.sandbox.transform import _Bounds


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

    def __init__(self) -> None:
        super().__init__(
            loader=_DirectoryLoader(),
            cache_size=0,
            auto_reload=False,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
            autoescape=False,
            finalize=_finalize,
        )
        self.globals["range"] = _bounded_range
        self.globals.pop("lipsum", None)
        self.filters["json"] = json_literal
        self.filters["js"] = js_string
        self.filters = {name: _guarded(name, func) for name, func in self.filters.items()}
        self.tests = {name: _guarded_test(test) for name, test in self.tests.items()}  # type: ignore[arg-type]
        self.filters.update(
            {
                "envplane-loop": _loop_filter,
                "envplane-charge": _charge_filter,
                "envplane-concat": _concat_filter,
                "envplane-data": _data_filter,
                "envplane-resolve": _resolve_filter,
            }
        )

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        return _Bounds(self).visit(tree)  # type: ignore[no-any-return]

    def getattr(self, obj: Any, attribute: str) -> Any:
        state = _state()
        if state is not None:
            state.tick()
        return super().getattr(_real(obj), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        state = _state()
        if state is not None:
            state.tick()
        return super().getitem(_real(obj), _real(argument))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        state = _state()
        if state is not None:
            state.tick()
        left, right = _real(left), _real(right)
        _check_binop(operator, left, right)
        return _checked(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        state = _state()
        if state is not None:
            state.step()
        args = tuple(_real(a) for a in args)
        kwargs = {k: _real(v) for k, v in kwargs.items()}
        args = _check_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, (Macro, BlockReference, LoopContext)) and isinstance(result, str):
            return _TemplateText(_checked(result))
        return _checked(result)


@functools.lru_cache(maxsize=1)
def _sandbox() -> _Sandbox:
    return _Sandbox()


def render_file(path: Path, variables: Mapping[str, Any]) -> Rendered:
    """A config template rendered with tokens for its placeholders (see the module doc)."""
    nonce = secrets.token_hex(8)
    prefix = f"qv{nonce}n"
    state = _Render(
        root=path.parent,
        slotted=True,
        deadline=time.monotonic() + limits.MAX_RENDER_SECONDS,
        prefix=prefix,
        token=re.compile(re.escape(prefix) + r"(\d+)q"),
    )
    env = _sandbox()
    text = _run(state, str(path), lambda: env.get_template(path.name), variables)
    assert state.token is not None
    return Rendered(text, tuple(state.slots), prefix, state.token, dict(state.sources))


def render_source(text: str, variables: Mapping[str, Any], *, filename: str) -> str:
    """Plain text rendering (no tokens, no includes), under the same sandbox and bounds."""
    state = _Render(root=None, slotted=False, deadline=time.monotonic() + limits.MAX_RENDER_SECONDS)
    state.sources[filename] = text
    env = _sandbox()

    def load() -> Template:
        if len(text) > limits.MAX_TEMPLATE_BYTES:
            raise TemplateUnreadable(f"{len(text):,} characters; a template may have 1 MiB")
        code = _compiled(env, text, None, filename)
        return env.template_class.from_code(env, code, env.make_globals(None), None)

    return _run(state, filename, load, variables)


def _run(
    state: _Render, filename: str, load: Callable[[], Template], variables: Mapping[str, Any]
) -> str:
    token = _CURRENT.set(state)
    try:
        template = load()
        out: list[str] = []
        size = 0
        for chunk in template.generate(**variables):
            size += len(chunk)
            if size > limits.MAX_OUTPUT_CHARS:
                raise _too_big("the rendered file", size)
            out.append(chunk)
        return "".join(out)
    except Exception as exc:  # everything a template can make go wrong: located bad input
        raise _located(exc, state, filename) from None
    finally:
        _CURRENT.reset(token)


def _located(exc: Exception, state: _Render, filename: str) -> MatrixError:
    file, line = filename, None
    for entry in traceback.extract_tb(exc.__traceback__):
        if entry.filename in state.sources:
            file, line = entry.filename, entry.lineno
    if isinstance(exc, TemplateSyntaxError):
        return MatrixError(
            exc.message or "template syntax error", file=exc.filename or file, line=exc.lineno
        )
    if isinstance(exc, UndefinedError):
        match = re.search(r"'([^']+)' is undefined", str(exc))
        if match is None:
            return MatrixError(f"undefined value: {exc}", file=file, line=line)
        name = match.group(1)
        return MatrixError(
            f"placeholder {{{{{name}}}}} has no value",
            file=file,
            line=line or _line_of_name(state.sources.get(file, ""), name),
            hint=f"define {name} under `variables:` in the matrix (top level or per environment)",
        )
    if isinstance(exc, TemplateBound):
        return MatrixError(
            f"rendering bound reached: {exc}", file=file, line=line, hint=BOUNDS_HINT
        )
    if isinstance(exc, IncludeRefused):
        return MatrixError(f"refused: {exc.message}", file=file, line=line)
    if isinstance(exc, TemplateNotFound):
        return MatrixError(f"included template not found: {exc.message}", file=file, line=line)
    if isinstance(exc, SecurityError):
        return MatrixError(
            f"not allowed in a template: {exc}",
            file=file,
            line=line,
            hint="templates run sandboxed: variables, filters, tests, loops and macros, "
            "but no Python internals and no changing lists or dicts",
        )
    if isinstance(exc, TemplateError):
        return MatrixError(f"template error: {exc}", file=file, line=line)
    if isinstance(exc, RecursionError):
        return MatrixError("the template recurses too deeply", file=file, line=line)
    return MatrixError(f"the template failed: {type(exc).__name__}: {exc}", file=file, line=line)


def _line_of_name(text: str, name: str) -> int | None:
    pattern = re.compile(r"{{[^}]*\b" + re.escape(name) + r"\b")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


__all__ = [
    "Rendered",
    "Slot",
    "js_string",
    "json_literal",
    "limits",
    "render_file",
    "render_source",
]
