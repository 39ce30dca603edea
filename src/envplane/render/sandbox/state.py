"""What one render keeps while it runs: its slots, its budget of steps, text and time, and
where in which template it is."""

from __future__ import annotations

import re
import sys
import time
import types
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import (
    Template,
)

from envplane.render.sandbox import limits
from envplane.render.sandbox.limits import TemplateBound, _bounded_text


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
    steps: int = field(default_factory=lambda: limits.MAX_STEPS)
    work: int = field(default_factory=lambda: limits.MAX_WORK_CHARS)
    sources: dict[str, str] = field(default_factory=dict)  # filename -> template text

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateBound(f"rendering took longer than {limits.MAX_RENDER_SECONDS:g} s")

    def step(self, weight: int = 0) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise TemplateBound(
                f"more than {limits.MAX_STEPS:,} loop iterations, calls and includes"
            )
        self.charge(weight)
        self.tick()

    def charge(self, chars: int) -> None:
        self.work -= chars
        if self.work < 0:
            raise TemplateBound(
                f"the template builds more than {limits.MAX_WORK_CHARS:,} characters"
            )

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
