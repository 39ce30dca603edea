"""Parity and explain: differences between environments, and where a value comes from."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
