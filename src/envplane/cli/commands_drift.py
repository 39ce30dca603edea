"""Drift: what runs against what envplane recorded and the matrix wants (issue 12)."""

from __future__ import annotations

import click

from envplane.cli.common import env_argument, output_option
from envplane.errors import EXIT_FAILED
from envplane.workspace import Workspace


@click.command()
@env_argument
@output_option
@click.pass_obj
def drift(ws: Workspace, env: str, output_format: str) -> None:
    """What runs in ENV against what envplane applied, field by field; changes nothing.

    Exit 0: no drift; 1: drift (each field with the expected and actual value, and who
    changed it where the world says); 2: bad input. `envplane update ENV` repairs it."""
    from envplane.cli import output
    from envplane.service.drift import drift as get_drift

    report = get_drift(ws, env)
    if output_format == "json":
        output.emit_json(report.to_json())
    else:
        output.console().print(report.text(), markup=False, highlight=False)
    if report.drifted:
        raise click.exceptions.Exit(EXIT_FAILED)


COMMANDS: list[click.Command] = [drift]
