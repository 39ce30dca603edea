"""Policies: the rules in force and where each was set (issue 12)."""

from __future__ import annotations

import click

from envplane.cli.common import output_option
from envplane.workspace import Workspace


@click.command("policies")
@output_option
@click.pass_obj
def policies_cmd(ws: Workspace, output_format: str) -> None:
    """The policy rules in force (envplane's defaults and the matrix's own), where each was
    set and which environments it holds in; the rules switched off, with their reason."""
    from envplane.cli import output
    from envplane.service.policies import policies_view

    view = policies_view(ws.matrix)
    if output_format == "json":
        output.emit_model(view)
        return
    out = output.console()
    out.print(f"{len(view.rules)} rule(s) in force in {view.matrix}", style="bold", markup=False)
    output.table(
        ["RULE", "KEY", "REQUIRES", "APPLIES TO", "ENVIRONMENTS", "SET AT"],
        [
            [r.id, r.key, r.requires, r.applies_to, ", ".join(r.environments) or "-", r.set_at]
            for r in view.rules
        ],
    )
    if view.disabled:
        out.print(f"\n{len(view.disabled)} rule(s) disabled:", style="bold", markup=False)
        for d in view.disabled:
            where = f"{view.matrix}:{d.line}" if d.line else view.matrix
            would = ", ".join(d.environments) or "no environment"
            out.print(f"  {d.id}: {d.reason}", markup=False)
            out.print(f"    at {where}; would hold in: {would}", style="dim", markup=False)


COMMANDS: list[click.Command] = [policies_cmd]
