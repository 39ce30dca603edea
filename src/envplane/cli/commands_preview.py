"""Previews, the reaper, sleep and wake: per-branch environments that go away (issue 13)."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
