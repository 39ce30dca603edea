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
import json
import math
import re
import secrets
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
    pass_context,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import BlockReference, Context, LoopContext, Macro
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg
from jinja2.visitor import NodeTransformer

from envplane.errors import MatrixError

MAX_TEMPLATE_BYTES = 1 << 20
MAX_OUTPUT_CHARS = 1 << 20
MAX_RANGE = 10_000
MAX_STEPS = 1_000_000
MAX_WORK_CHARS = 16 << 20
MAX_RENDER_SECONDS = 5.0
MAX_INT_BITS = 1 << 16

BOUNDS_HINT = (
    "template rendering is bounded (1 MiB per file and per value, range() of 10,000, "
    "1,000,000 steps, 5 s): see 'Template bounds' in docs/matrix.md"
)


class TemplateBound(SecurityError):
    """A bound of rendering was reached."""


class IncludeRefused(TemplateNotFound):
    """An include/import/extends of a file outside the template directory."""


class TemplateUnreadable(TemplateError):
    """A template file too large or not UTF-8."""


@dataclass(frozen=True)
class Slot:
    """One `{{ … }}` output: its text, and the template file and line that produced it."""

    text: str
    file: str
    line: int | None


@dataclass
class _Render:
    root: Path | None  # the template directory includes may read; None: no includes
    slotted: bool
    deadline: float
    prefix: str = ""
    token: re.Pattern[str] | None = None
    slots: list[Slot] = field(default_factory=list)
    steps: int = field(default_factory=lambda: MAX_STEPS)
    work: int = field(default_factory=lambda: MAX_WORK_CHARS)
    sources: dict[str, str] = field(default_factory=dict)  # filename -> template text

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateBound(f"rendering took longer than {MAX_RENDER_SECONDS:g} s")

    def step(self, weight: int = 0) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateBound(f"more than {MAX_STEPS:,} loop iterations, calls and includes")
        self.charge(weight)
        self.tick()

    def charge(self, chars: int) -> None:
        self.work -= chars
        if self.work < 0:
            raise TemplateBound(f"the template builds more than {MAX_WORK_CHARS:,} characters")

    def resolve(self, text: str) -> str:
        """Tokens inside a captured text replaced by their values (the text becomes one value)."""
        if not self.prefix or self.prefix not in text:
            return str.__str__(text)
        assert self.token is not None
        return self.token.sub(lambda m: self.slots[int(m[1])].text, text)

    def slot(self, text: str) -> str:
        text = _bounded_text(self.resolve(text))
        file, line = _template_position()
        self.slots.append(Slot(text, file, line))
        return f"{self.prefix}{len(self.slots) - 1}q"


_CURRENT: ContextVar[_Render | None] = ContextVar("envplane_template_render", default=None)


def _state() -> _Render | None:
    return _CURRENT.get()


class _TemplateText(str):
    """Rendered template text (a macro's, a block's): structure, whose placeholders are tokens.
    Compared, it is its real text; filters, calls and operators get the real text too."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return bool(_real(self) == _real(other))

    def __ne__(self, other: object) -> bool:
        return bool(_real(self) != _real(other))

    def __hash__(self) -> int:
        return hash(_real(self))

    def __contains__(self, other: object) -> bool:
        return str(_real(other)) in _real(self)


def _real(value: Any) -> Any:
    """A text holding tokens, as the text it stands for (its placeholders' values in place)."""
    if isinstance(value, str):
        state = _state()
        if state is not None and state.prefix and state.prefix in value:
            return state.resolve(value)
    return value


@dataclass(frozen=True)
class Rendered:
    """A template rendered with tokens in place of its placeholders' values."""

    text: str
    slots: tuple[Slot, ...]
    prefix: str
    token: re.Pattern[str]
    sources: Mapping[str, str]

    @property
    def nonce(self) -> str:
        return self.prefix[2:-1]

    def expression(self, slot: Slot) -> str:
        """The `{{ … }}` text at the slot's line, to name it in a message."""
        source = self.sources.get(slot.file, "")
        lines = source.splitlines()
        if slot.line is None or not 0 < slot.line <= len(lines):
            return "a placeholder"
        found = re.findall(r"{{.*?}}", lines[slot.line - 1])
        if not found:
            return "a placeholder"
        return found[0] if len(found) == 1 else "one of " + ", ".join(found)


# --- sizes -------------------------------------------------------------------------------


def _too_big(what: str, size: int, limit: int = MAX_OUTPUT_CHARS) -> TemplateBound:
    return TemplateBound(f"{what} of {size:,} characters; the limit is {limit:,}")


def _bounded_text(text: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        raise _too_big("a value", len(text))
    return text


def _weight(value: Any, limit: int = MAX_OUTPUT_CHARS) -> int:
    """About how many characters `str(value)` has, counted no further than `limit` (shared and
    nested references count each time they would print, so `[[x] * n] * n` is caught)."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item) + 2
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            total += 5
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 2
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, Namespace):
            stack.append(dict(item._Namespace__attrs))
        else:
            total += 8
        if total > limit:
            raise _too_big("a value", total, limit)
    return total


def _check_value(value: Any) -> None:
    """Any one value a template holds: bounded in characters (or bits)."""
    if isinstance(value, (str, bytes)):
        if len(value) > MAX_OUTPUT_CHARS:
            raise _too_big("a value", len(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
    elif isinstance(value, (list, tuple, dict, set, frozenset)) and len(value) > MAX_OUTPUT_CHARS:
        raise TemplateBound(f"a collection of {len(value):,} items")


def _checked(value: Any) -> Any:
    """A result: checked, and its size charged to the render's work."""
    _check_value(value)
    state = _state()
    if state is not None and isinstance(value, (str, bytes, list, tuple, dict)):
        state.charge(len(value))
    return value


def _int_arg(value: Any, what: str, limit: int = MAX_OUTPUT_CHARS) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > limit:
        raise TemplateBound(f"{what} {value:,}; the limit is {limit:,}")


_PERCENT_SPEC = re.compile(r"%[#0\- +]*(\d*)(?:\.(\d*))?")
_BRACE_SPEC = re.compile(r"{[^{}]*:([^{}]*)}")


def _check_format(fmt: Any, args: Any = ()) -> None:
    """Widths and precisions in a %- or {}-format string, and numbers passed for `*` widths."""
    if not isinstance(fmt, str):
        return
    widths = [d for m in _PERCENT_SPEC.finditer(fmt) for d in m.groups() if d]
    widths += [d for m in _BRACE_SPEC.finditer(fmt) for d in re.findall(r"\d+", m.group(1))]
    for digits in widths:
        if len(digits) > 7 or int(digits) > MAX_OUTPUT_CHARS:
            raise TemplateBound(f"a format width of {digits}; the limit is {MAX_OUTPUT_CHARS:,}")
    if isinstance(args, dict):
        values: Iterable[Any] = args.values()
    else:
        values = args if isinstance(args, tuple) else (args,)
    for value in values:
        _int_arg(value, "a format argument of")


def _check_replace(text: Any, old: Any, new: Any, count: Any = None) -> None:
    if not (isinstance(text, str) and isinstance(old, str) and isinstance(new, str)):
        return
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    size = len(text) + times * max(0, len(new) - len(old))
    if size > MAX_OUTPUT_CHARS:
        raise _too_big("a replace() result", size)


def _check_join(items: list[Any], sep: Any) -> None:
    size = sum(_weight(x) for x in items) + max(0, len(items) - 1) * len(str(sep))
    if size > MAX_OUTPUT_CHARS:
        raise _too_big("a join() result", size)


# --- filters -----------------------------------------------------------------------------


def json_literal(value: Any) -> str:
    """`{{ x | json }}`: the value as a JSON literal (a text becomes a quoted JSON string)."""
    return json.dumps(value, ensure_ascii=False)


_JS_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def js_string(value: Any) -> str:
    """`{{ x | js }}`: the value as a JavaScript string literal, quotes included.

    JSON-string escaping (valid JavaScript), ASCII only, so U+2028/U+2029 cannot end a line of
    old JavaScript, and `< > & '` escaped too, so the literal is safe even inside a `<script>`
    element or next to single quotes. `JSON.parse` and any JavaScript engine read back the
    exact value."""
    literal = json.dumps(str(value), ensure_ascii=True)
    return "".join(_JS_UNSAFE.get(c, c) for c in literal)


def _pre_filter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Size checks before a filter that can build something large from small input."""
    value = args[0] if args else None
    rest = args[1:]

    def arg(index: int, key: str, default: Any = None) -> Any:
        return rest[index] if len(rest) > index else kwargs.get(key, default)

    if name == "center":
        _int_arg(arg(0, "width", 80), "a width of")
    elif name == "indent":
        width = arg(0, "width", 4)
        each = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _int_arg(each, "an indent of")
        lines = str(value).count("\n") + 1
        if lines * max(each, 0) + len(str(value)) > MAX_OUTPUT_CHARS:
            raise _too_big("an indent() result", lines * each + len(str(value)))
    elif name == "wordwrap":
        text = str(value)
        width = arg(0, "width", 79)
        wrap = arg(2, "wrapstring") or "\n"
        pieces = len(text) // max(width if isinstance(width, int) else 1, 1) + len(text.split()) + 1
        if len(text) + pieces * len(str(wrap)) > MAX_OUTPUT_CHARS:
            raise _too_big("a wordwrap() result", len(text) + pieces * len(str(wrap)))
    elif name == "format":
        _check_format(value, rest or tuple(kwargs.values()))
    elif name == "replace":
        _check_replace(value, arg(0, "old"), arg(1, "new"), arg(2, "count"))
    elif name == "join":
        items = list(value) if isinstance(value, Iterable) else []
        _check_join(items, arg(0, "d", ""))
        return (items, *rest)
    elif name in ("batch", "slice"):
        count = arg(0, "linecount" if name == "batch" else "slices")
        _int_arg(count, f"a {name} count of", MAX_RANGE)
    elif name in ("tojson", "pprint"):
        _int_arg(arg(0, "indent"), "an indent of", 64)
    return args


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """A filter with the render's checks around it: time, argument sizes, result size."""
    passed = 1 if _PassArg.from_obj(func) is not None else 0

    @functools.wraps(func)
    def guard(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        if state is not None:
            state.tick()
        real = tuple(_real(a) for a in args[passed:])
        kwargs = {k: _real(v) for k, v in kwargs.items()}
        for value in (*real, *kwargs.values()):
            _check_value(value)
            if isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
                _weight(value)
        args = (*args[:passed], *_pre_filter(name, real, kwargs))
        return _checked(func(*args, **kwargs))

    return guard


def _guarded_test(func: Callable[..., Any]) -> Callable[..., Any]:
    passed = 1 if _PassArg.from_obj(func) is not None else 0

    @functools.wraps(func)
    def guard(*args: Any, **kwargs: Any) -> Any:
        state = _state()
        if state is not None:
            state.tick()
        real = tuple(_real(a) for a in args[passed:])
        return func(*args[:passed], *real, **{k: _real(v) for k, v in kwargs.items()})

    return guard


def _bounded_range(*args: int) -> range:
    for value in args:
        _int_arg(value, "a range() bound of", sys.maxsize)
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateBound(f"range() of {len(numbers):,} items; the limit is {MAX_RANGE:,}")
    return numbers


# Internal filters the AST transform below inserts. Their names are not identifiers, so a
# template cannot write them; reaching them through `map('…')` does no harm either.


@pass_context
def _loop_filter(context: Context, iterable: Any, weight: int) -> Any:
    state = _state()
    return iterable if state is None else _counted(iterable, weight, state)


def _counted(iterable: Iterable[Any], weight: int, state: _Render) -> Iterator[Any]:
    for item in iterable:
        state.step(weight)
        yield item


@pass_context
def _charge_filter(context: Context, _: Any, weight: int) -> str:
    state = _state()
    if state is not None:
        state.step(weight)
    return ""


@pass_context
def _concat_filter(context: Context, items: list[Any]) -> str:
    texts = [_text_of(_real(item)) for item in items]
    size = sum(len(t) for t in texts)
    if size > MAX_OUTPUT_CHARS:
        raise _too_big("a ~ concatenation", size)
    return str(_checked("".join(texts)))


@pass_context
def _data_filter(context: Context, value: Any) -> str:
    return _output(value, structure=False)


@pass_context
def _resolve_filter(context: Context, value: Any) -> Any:
    return _real(value)


@pass_context
def _finalize(context: Context, value: Any) -> str:
    return _output(value, structure=True)


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return _bounded_text(str.__str__(value))
    if isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
        _weight(value)
    return _bounded_text(str(value))  # a StrictUndefined raises here


def _output(value: Any, *, structure: bool) -> str:
    state = _state()
    if state is None:
        return _text_of(value)
    state.tick()
    if structure and isinstance(value, _TemplateText):
        return value
    text = _text_of(value)
    state.charge(len(text))
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise TemplateError(
                "a value is not valid Unicode text (it holds a lone surrogate, such as "
                'YAML\'s "\\ud800")'
            ) from None
    return state.slot(text) if state.slotted else text


def _template_position() -> tuple[str, int | None]:
    """The template file and line being rendered, from the innermost template frame."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if isinstance(template, Template):
            return template.filename or "<template>", template.get_corresponding_lineno(
                frame.f_lineno
            )
        frame = frame.f_back
    return "<template>", None


# --- the environment ---------------------------------------------------------------------


def _literal_size(body: list[nodes.Node]) -> int:
    return sum(len(data.data) for node in body for data in node.find_all(nodes.TemplateData))


def _internal(node: nodes.Expr | None, name: str, *args: Any, lineno: int) -> nodes.Filter:
    consts: list[nodes.Expr] = [nodes.Const(a, lineno=lineno) for a in args]
    return nodes.Filter(node, name, consts, [], None, None, lineno=lineno)


class _Bounds(NodeTransformer):
    """Rewrites a parsed template so that loops, macro bodies, `~` and filter blocks report to
    the render: every loop iterates through a counter, every macro (and `{% call %}` body)
    charges its text when it runs, `~` goes through a size check, and a filter block whose
    filters could bring values into the text becomes one value."""

    def __init__(self, environment: Environment) -> None:
        self.environment = environment

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = 1 + _literal_size(node.body)
        node.iter = _internal(node.iter, "envplane-loop", weight, lineno=node.lineno)  # type: ignore[arg-type]
        return node

    def _charged(self, node: nodes.Macro | nodes.CallBlock) -> nodes.Node:
        self.generic_visit(node)
        weight = 1 + _literal_size(node.body)
        charge = _internal(nodes.Const(None), "envplane-charge", weight, lineno=node.lineno)
        node.body.insert(0, nodes.ExprStmt(charge, lineno=node.lineno))
        return node

    visit_Macro = _charged
    visit_CallBlock = _charged

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return _internal(items, "envplane-concat", lineno=node.lineno)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        self.generic_visit(node)
        node.filter = _internal(node.filter, "envplane-data", lineno=node.lineno)
        return node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        if node.filter is None:
            node.filter = _internal(None, "envplane-resolve", lineno=node.lineno)
        return node


class _DirectoryLoader(BaseLoader):
    """Loads templates from the render's template directory, and from nowhere else."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        state = _state()
        root = state.root if state is not None else None
        if root is None:
            raise IncludeRefused(template, f"{template!r}: this template cannot include files")
        parts = template.replace("\\", "/").split("/")
        refused = template.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]
        path = root.joinpath(*[p for p in parts if p not in ("", ".")])
        if not refused:
            try:
                refused = not path.resolve().is_relative_to(root.resolve())
            except OSError:
                refused = True
        if refused:
            raise IncludeRefused(
                template,
                f"{template!r} is outside the template directory; only files in {root} "
                "can be included, imported or extended",
            )
        if not path.is_file():
            raise TemplateNotFound(template, f"{template!r} not found in {root}")
        size = path.stat().st_size
        if size > MAX_TEMPLATE_BYTES:
            raise TemplateUnreadable(
                f"{path} has {size:,} bytes; a template may have {MAX_TEMPLATE_BYTES:,}"
            )
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TemplateUnreadable(f"{path} is not UTF-8 text") from None
        filename = str(path)
        assert state is not None
        state.sources[filename] = source
        state.step(len(source))
        return source, filename, lambda: False

    def load(
        self,
        environment: Environment,
        name: str,
        globals: Any = None,
    ) -> Template:
        source, filename, _ = self.get_source(environment, name)
        code = _compiled(environment, source, name, filename)
        return environment.template_class.from_code(
            environment, code, environment.make_globals(globals), None
        )


@functools.lru_cache(maxsize=128)
def _compiled(
    environment: Environment, source: str, name: str | None, filename: str
) -> types.CodeType:
    token = _CURRENT.set(None)  # constant folding at compile time charges nothing
    try:
        return environment.compile(source, name, filename)
    finally:
        _CURRENT.reset(token)


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


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(times, int) and times > 0:
                each = len(seq) if isinstance(seq, (str, bytes)) else _weight(seq)
                size = each * times
                if size > MAX_OUTPUT_CHARS:
                    raise _too_big("a repetition", size)
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {MAX_INT_BITS:,} bits")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right)
    elif (
        operator == "+"
        and isinstance(left, sized)
        and isinstance(right, sized)
        and len(left) + len(right) > MAX_OUTPUT_CHARS
    ):
        raise _too_big("a concatenation", len(left) + len(right))


def _check_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Before a call: container arguments are bounded; a str (or bytes) method that can build
    something large from small input is checked for the size it would build."""
    values = [*args, *(v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars"))]
    for value in values:
        _check_value(value)
        if isinstance(value, (list, tuple, dict, set, frozenset, Namespace)):
            _weight(value)
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
    owner = getattr(target, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return args
    for value in values:
        _int_arg(value, "a number argument of")
    name = getattr(target, "__name__", "") if isinstance(owner, str) else ""
    if name == "replace" and len(args) >= 2:
        _check_replace(owner, *args[:3])
    elif name == "join" and args:
        items = list(args[0])
        _check_join(items, owner)
        return (items, *args[1:])
    elif name == "expandtabs" and isinstance(owner, str):
        tab = args[0] if args else kwargs.get("tabsize", 8)
        size = owner.count("\t") * tab + len(owner) if isinstance(tab, int) else 0
        if size > MAX_OUTPUT_CHARS:
            raise _too_big("an expandtabs() result", size)
    elif name in ("format", "format_map"):
        _check_format(owner, tuple(values))
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        if len(owner) * longest > MAX_OUTPUT_CHARS:
            raise _too_big("a translate() result", len(owner) * longest)
    return args


@functools.lru_cache(maxsize=1)
def _sandbox() -> _Sandbox:
    return _Sandbox()


# --- rendering ---------------------------------------------------------------------------


def render_file(path: Path, variables: Mapping[str, Any]) -> Rendered:
    """A config template rendered with tokens for its placeholders (see the module doc)."""
    nonce = secrets.token_hex(8)
    prefix = f"qv{nonce}n"
    state = _Render(
        root=path.parent,
        slotted=True,
        deadline=time.monotonic() + MAX_RENDER_SECONDS,
        prefix=prefix,
        token=re.compile(re.escape(prefix) + r"(\d+)q"),
    )
    env = _sandbox()
    text = _run(state, str(path), lambda: env.get_template(path.name), variables)
    assert state.token is not None
    return Rendered(text, tuple(state.slots), prefix, state.token, dict(state.sources))


def render_source(text: str, variables: Mapping[str, Any], *, filename: str) -> str:
    """Plain text rendering (no tokens, no includes), under the same sandbox and bounds."""
    state = _Render(root=None, slotted=False, deadline=time.monotonic() + MAX_RENDER_SECONDS)
    state.sources[filename] = text
    env = _sandbox()

    def load() -> Template:
        if len(text) > MAX_TEMPLATE_BYTES:
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
            if size > MAX_OUTPUT_CHARS:
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
