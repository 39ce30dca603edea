"""Everything the CLI prints: human tables and plans on stdout, progress on stderr, or JSON."""

from __future__ import annotations

import difflib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from envplane.events import Event
    from envplane.plan.model import Change, Plan

_consoles: dict[bool, Console] = {}

SYMBOL = {"create": "+", "update": "~", "delete": "-", "noop": "="}
STYLE = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}


def no_color() -> bool:
    """NO_COLOR set to anything but the empty string (no-color.org)."""
    return os.environ.get("NO_COLOR", "") != ""


def console(stderr: bool = False) -> Console:
    if stderr not in _consoles:
        from rich.console import Console

        # highlight off so data is printed as given. Piped output is not cut to 80 columns:
        # an id that scripts copy must arrive whole.
        stream = sys.stderr if stderr else sys.stdout
        width = None if stream.isatty() else 1000
        # NO_COLOR: no styles at all. Rich's own NO_COLOR handling drops colours but keeps
        # bold, dim and underline; without a colour system it emits no escape sequence.
        # emoji off: ":100:" in "file.yaml:100: message" must not become an emoji.
        _consoles[stderr] = Console(
            stderr=stderr,
            highlight=False,
            emoji=False,
            soft_wrap=True,
            width=width,
            color_system=None if no_color() else "auto",
        )
    return _consoles[stderr]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def emit_model(model: BaseModel | Sequence[BaseModel]) -> None:
    """A result's view (`envplane.service.results`), or a list of them, as its JSON."""
    if isinstance(model, Sequence):
        emit_json([m.model_dump(mode="json") for m in model])
    else:
        emit_json(model.model_dump(mode="json"))


def progress(message: str) -> None:
    with _bytes.lock:
        _bytes.end_line()
        console(stderr=True).print(f"  {message}", style="cyan", markup=False)


def show_event(event: Event) -> None:
    """The service layer's progress events, as lines on stderr."""
    from envplane import events

    if isinstance(event, events.StepStarted):
        progress(f"[{event.position}/{event.total}] {event.action} {event.resource}")
    elif isinstance(event, events.LogLine):
        progress(event.message)
    elif isinstance(event, events.BytesDone):
        _bytes.show(event.what, event.done, event.total)


def _amount(done: int, total: int | None = None) -> str:
    """ "12.3 MB", "12.3 of 40.0 MB"; in kB when it is all under 100 kB."""
    scale, unit = (1e6, "MB") if max(done, total or 0) >= 100_000 else (1e3, "kB")
    of = f" of {total / scale:.1f}" if total is not None else ""
    return f"{done / scale:.1f}{of} {unit}"


@dataclass
class _Counted:
    done: int
    total: int | None
    quarter: int = 0  # piped, total known: the last quarter of it printed (4: complete)
    size: int = 0  # piped, total unknown: the size last printed

    @property
    def complete(self) -> bool:
        return self.total is not None and self.done >= self.total

    def text(self, what: str) -> str:
        return f"{what}: {_amount(self.done, self.total)}"


class _BytesProgress:
    """`BytesDone` events (each component of a backup as it is written, of a restore as it
    is verified; side by side from several threads) shown without flooding: on a TTY one
    line, rewritten in place, holding every component in progress, ended once they are all
    complete (done == total); piped, a component's line at each quarter of its total, or
    while its total is unknown each time its size grew fourfold (from 64 MB), and once when
    it is complete - a handful of lines however long it takes. Any other line on stderr ends
    the updating line first."""

    FIRST_UNKNOWN = 64 << 20

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.counted: dict[str, _Counted] = {}
        self.open = False  # a TTY line without its newline yet
        self.drawn = 0  # its length
        self.drawn_at = 0.0

    def end_line(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False

    def show(self, what: str, done: int, total: int | None) -> None:
        with self.lock:
            seen = self.counted.setdefault(what, _Counted(done, total))
            seen.done, seen.total = done, total
            if sys.stderr.isatty():
                self._draw(seen.complete)
            else:
                self._line(what, seen)

    def _draw(self, just_completed: bool) -> None:
        now = time.monotonic()
        finished = all(c.complete for c in self.counted.values())
        if not (finished or just_completed) and now - self.drawn_at < 0.2:
            return
        self.drawn_at = now
        text = "  " + "; ".join(c.text(w) for w, c in self.counted.items())
        text = text[: shutil.get_terminal_size().columns - 1]  # a wrapped line cannot be redrawn
        # Spaces, not an erase sequence, wipe a longer previous text: no escape code at all.
        sys.stderr.write("\r" + text.ljust(self.drawn if self.open else 0))
        sys.stderr.flush()
        self.open, self.drawn = True, len(text)
        if finished:
            self.end_line()
            self.counted.clear()

    def _line(self, what: str, seen: _Counted) -> None:
        if seen.complete:
            due = True
            del self.counted[what]
        elif seen.total:
            quarter = min(3, seen.done * 4 // seen.total)
            due, seen.quarter = quarter > seen.quarter, max(quarter, seen.quarter)
        else:
            due = seen.done >= max(self.FIRST_UNKNOWN, seen.size * 4)
            seen.size = seen.done if due else seen.size
        if due:
            console(stderr=True).print(f"  {seen.text(what)}", style="cyan", markup=False)


_bytes = _BytesProgress()


def error(message: str, hint: str | None, exit_code: int = 1, *, as_json: bool = False) -> None:
    """An error on stderr: `error:` and `hint:` lines, or with `as_json` one JSON object
    {"error", "hint", "exit_code"} on one line (for a command run with `-o json`)."""
    with _bytes.lock:
        _bytes.end_line()
    if as_json:
        doc = {"error": message, "hint": hint, "exit_code": exit_code}
        sys.stderr.write(json.dumps(doc) + "\n")
        sys.stderr.flush()
        return
    err = console(stderr=True)
    err.print(f"error: {message}", style="bold red", markup=False)
    if hint:
        err.print(f"hint: {hint}", style="yellow", markup=False)


def _change_lines(change: Change) -> list[str]:
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
        lines = [f"{change.path}:{_cause(change)}"] + [f"    {d}" for d in list(diff)[2:40]]
        return lines
    return [f"{change.path}: {_short(old)} -> {_short(new)}{_cause(change)}"]


def _cause(change: Change) -> str:
    return f"  (from {change.cause.text()})" if change.cause is not None else ""


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 80 else text[:77] + "..."


def print_plan(plan: Plan) -> None:
    out = console()
    out.print(
        f"Plan: {plan.operation} {plan.environment} on the {plan.target} target", style="bold"
    )
    width = max((len(s.key) for s in plan.steps), default=10)
    for step in plan.steps:
        out.print(
            f"  {SYMBOL[step.action]} {step.key.ljust(width)}  {step.reason}",
            style=STYLE[step.action],
            markup=False,
        )
        for change in step.changes:
            for line in _change_lines(change):
                out.print(f"      {line}", markup=False)
        for item in step.contains:
            out.print(f"      + {item}", style="green", markup=False)
    if plan.notes:
        out.print(f"Not honoured on the {plan.target} target:", style="bold")
        for note in plan.notes:
            out.print(f"  - {note}", markup=False)
    out.print(f"{plan.summary()}.", style="bold")
    if plan.cost is not None:
        from envplane.cli.cost_view import print_cost_change

        print_cost_change(plan.cost)


def table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    for header in headers:
        t.add_column(header, no_wrap=True)
    for row in rows:
        t.add_row(*row)
    console().print(t)
