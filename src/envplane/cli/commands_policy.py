"""Policies: the rules in force and where each was set (issue 12)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
