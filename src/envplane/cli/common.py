"""Options and small helpers shared by the command modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

output_option = click.option(
    "-o",
    "--output",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)

dry_run_option = click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")

target_option = click.option(
    "--target",
    type=click.Choice(["local", "cloud"]),
    default=None,
    help="Where the environment runs (default: local, or where it already runs).",
)


def env_argument(f: F) -> F:
    return click.argument("env", metavar="ENV")(f)
