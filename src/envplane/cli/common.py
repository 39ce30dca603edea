"""Options and small helpers shared by the command modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from envplane.targets.registry import SPECS, TARGETS

F = TypeVar("F", bound=Callable[..., Any])

# The registry's targets, for every --target option (the registry imports no driver).
TARGET_CHOICE = click.Choice(list(TARGETS))
TARGET_HELP = "Where it runs: " + "; ".join(f"{s.name}, {s.label}" for s in SPECS) + "."

OUTPUT_META = "envplane.output"
"""ctx.meta key (shared by every context of one invocation): the `-o` the command was given,
for the error handler in `main` (errors are JSON too under `-o json`)."""


def _remember_output(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta[OUTPUT_META] = value
    return value


output_option = click.option(
    "-o",
    "--output",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    callback=_remember_output,
    help="Output format (with json, errors too: one JSON object on stderr).",
)

dry_run_option = click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")

target_option = click.option(
    "--target",
    type=TARGET_CHOICE,
    default=None,
    help="Where the environment runs (default: local, or where it already runs).",
)


def env_argument(f: F) -> F:
    return click.argument("env", metavar="ENV")(f)
