"""Every filter and test wrapped: bounded, checked, and seeing real values (tokens resolved);
the finalize that turns a `{{ }}` output into a slot."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import (
    TemplateError,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.utils import Namespace, _PassArg

from envplane.render.sandbox import limits
from envplane.render.sandbox.checks import (
    _check_format,
    _check_join,
    _check_replace,
    _check_value,
    _checked,
    _int_arg,
    _weight,
)
from envplane.render.sandbox.limits import TemplateBound, _bounded_text, _too_big
from envplane.render.sandbox.state import _real, _Render, _state, _TemplateText


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
        if lines * max(each, 0) + len(str(value)) > limits.MAX_OUTPUT_CHARS:
            raise _too_big("an indent() result", lines * each + len(str(value)))
    elif name == "wordwrap":
        text = str(value)
        width = arg(0, "width", 79)
        wrap = arg(2, "wrapstring") or "\n"
        pieces = len(text) // max(width if isinstance(width, int) else 1, 1) + len(text.split()) + 1
        if len(text) + pieces * len(str(wrap)) > limits.MAX_OUTPUT_CHARS:
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
        _int_arg(count, f"a {name} count of", limits.MAX_RANGE)
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
    if len(numbers) > limits.MAX_RANGE:
        raise TemplateBound(f"range() of {len(numbers):,} items; the limit is {limits.MAX_RANGE:,}")
    return numbers


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
    if size > limits.MAX_OUTPUT_CHARS:
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
