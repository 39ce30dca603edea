"""Cost and prices: what environments cost, from a shipped price table (issue 13)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
