"""Everything the CLI prints: human tables and plans on stdout, progress on stderr, or JSON."""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from envplane.events import Event
    from envplane.plan.model import Change, Plan

_consoles: dict[bool, Console] = {}

SYMBOL = {"create": "+", "update": "~", "delete": "-", "noop": "="}
STYLE = {"create": "green", "update": "yellow", "delete": "red", "noop": "dim"}


def console(stderr: bool = False) -> Console:
    if stderr not in _consoles:
        from rich.console import Console

        # Rich honours NO_COLOR itself; highlight off so data is printed as given. Piped
        # output is not cut to 80 columns: an id that scripts copy must arrive whole.
        stream = sys.stderr if stderr else sys.stdout
        width = None if stream.isatty() else 1000
        # emoji off: ":100:" in "file.yaml:100: message" must not become an emoji.
        _consoles[stderr] = Console(
            stderr=stderr, highlight=False, emoji=False, soft_wrap=True, width=width
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
    console(stderr=True).print(f"  {message}", style="cyan", markup=False)


def show_event(event: Event) -> None:
    """The service layer's progress events, as lines on stderr."""
    from envplane import events

    if isinstance(event, events.StepStarted):
        progress(f"[{event.position}/{event.total}] {event.action} {event.resource}")
    elif isinstance(event, events.LogLine):
        progress(event.message)
    elif isinstance(event, events.BytesDone) and event.total:
        progress(f"{event.what}: {event.done / 1e6:.1f} of {event.total / 1e6:.1f} MB")


def error(message: str, hint: str | None) -> None:
    err = console(stderr=True)
    err.print(f"error: {message}", style="bold red", markup=False)
    if hint:
        err.print(f"hint: {hint}", style="yellow", markup=False)


def _change_lines(change: Change) -> list[str]:
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1)
        lines = [f"{change.path}:"] + [f"    {d}" for d in list(diff)[2:40]]
        return lines
    return [f"{change.path}: {_short(old)} -> {_short(new)}"]


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


def table(headers: list[str], rows: list[list[str]]) -> None:
    from rich.table import Table

    t = Table(box=None, pad_edge=False)
    for header in headers:
        t.add_column(header, no_wrap=True)
    for row in rows:
        t.add_row(*row)
    console().print(t)
