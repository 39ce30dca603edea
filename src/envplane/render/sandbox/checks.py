"""Size and type checks done before an operation, a call or a format runs, so nothing
large is ever allocated and no Python internals are reached."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from jinja2.utils import Namespace

from envplane.render.sandbox import limits
from envplane.render.sandbox.limits import TemplateBound, _too_big
from envplane.render.sandbox.state import _state


def _weight(value: Any, limit: int = limits.MAX_OUTPUT_CHARS) -> int:
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
        if len(value) > limits.MAX_OUTPUT_CHARS:
            raise _too_big("a value", len(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > limits.MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {limits.MAX_INT_BITS:,} bits")
    elif (
        isinstance(value, (list, tuple, dict, set, frozenset))
        and len(value) > limits.MAX_OUTPUT_CHARS
    ):
        raise TemplateBound(f"a collection of {len(value):,} items")


def _checked(value: Any) -> Any:
    """A result: checked, and its size charged to the render's work."""
    _check_value(value)
    state = _state()
    if state is not None and isinstance(value, (str, bytes, list, tuple, dict)):
        state.charge(len(value))
    return value


def _int_arg(value: Any, what: str, limit: int = limits.MAX_OUTPUT_CHARS) -> None:
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
        if len(digits) > 7 or int(digits) > limits.MAX_OUTPUT_CHARS:
            raise TemplateBound(
                f"a format width of {digits}; the limit is {limits.MAX_OUTPUT_CHARS:,}"
            )
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
    if size > limits.MAX_OUTPUT_CHARS:
        raise _too_big("a replace() result", size)


def _check_join(items: list[Any], sep: Any) -> None:
    size = sum(_weight(x) for x in items) + max(0, len(items) - 1) * len(str(sep))
    if size > limits.MAX_OUTPUT_CHARS:
        raise _too_big("a join() result", size)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(times, int) and times > 0:
                each = len(seq) if isinstance(seq, (str, bytes)) else _weight(seq)
                size = each * times
                if size > limits.MAX_OUTPUT_CHARS:
                    raise _too_big("a repetition", size)
        ints = isinstance(left, int) and isinstance(right, int)
        if ints and left.bit_length() + right.bit_length() > limits.MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {limits.MAX_INT_BITS:,} bits")
    elif operator == "**" and isinstance(left, int) and isinstance(right, int):
        if right > 0 and abs(left) > 1 and right * math.log2(abs(left)) > limits.MAX_INT_BITS:
            raise TemplateBound(f"an integer of more than {limits.MAX_INT_BITS:,} bits")
    elif operator == "%" and isinstance(left, str):
        _check_format(left, right)
    elif (
        operator == "+"
        and isinstance(left, sized)
        and isinstance(right, sized)
        and len(left) + len(right) > limits.MAX_OUTPUT_CHARS
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
        if size > limits.MAX_OUTPUT_CHARS:
            raise _too_big("an expandtabs() result", size)
    elif name in ("format", "format_map"):
        _check_format(owner, tuple(values))
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str)), default=1)
        if len(owner) * longest > limits.MAX_OUTPUT_CHARS:
            raise _too_big("a translate() result", len(owner) * longest)
    return args
