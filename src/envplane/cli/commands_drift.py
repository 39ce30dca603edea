"""Drift: what runs against what envplane recorded and the matrix wants (issue 12)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
