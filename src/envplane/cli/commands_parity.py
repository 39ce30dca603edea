"""Parity and explain: differences between environments, and where a value comes from."""

from __future__ import annotations

import click

from envplane.cli.common import OUTPUT_META, env_argument, output_option
from envplane.errors import EXIT_FAILED
from envplane.workspace import Workspace


def _remember(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # Errors are JSON only under -o json; markdown errors stay plain text.
    ctx.meta[OUTPUT_META] = "json" if value == "json" else "text"
    return value


@click.command()
@click.argument("envs", nargs=-1, metavar="[ENV ...]")
@click.option(
    "-o",
    "--output",
    "output_format",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    callback=_remember,
    help="text, json (for CI gates) or markdown (for a pull request).",
)
@click.option("--live", is_flag=True, help="Compare what runs (releases, rendered files).")
@click.option("--all", "show_all", is_flag=True, help="Also show the settings that are equal.")
@click.pass_obj
def parity(
    ws: Workspace, envs: tuple[str, ...], output_format: str, live: bool, show_all: bool
) -> None:
    """Compare every setting across environments (default: the pipeline's).

    Each difference is scale (expected by size), declared (`parity: allow` in the matrix, with
    its reason) or undeclared: exit 1 if there is one, 2 for bad input."""
    from envplane.cli import output
    from envplane.consistency.parity_output import (
        MARK,
        cell_texts,
        located,
        to_json,
        to_markdown,
    )
    from envplane.service.parity import parity_report

    report = parity_report(ws, list(envs), live=live)
    if output_format == "json":
        output.emit_json(to_json(report, show_all=show_all))
    elif output_format == "markdown":
        click.echo(to_markdown(report, show_all=show_all), nl=False)
    else:
        out = output.console()
        if report.not_created:
            out.print(f"not created: {', '.join(report.not_created)}", markup=False)
        order = {"undeclared": 0, "declared": 1, "scale": 2, "equal": 3}
        rows = sorted(
            (r for r in report.rows if show_all or r.kind != "equal"), key=lambda r: order[r.kind]
        )
        table = []
        for row in rows:
            if row.kind == "undeclared":
                why = "; ".join(located(c) for c in row.cells.values() if c.where)
            else:
                why = row.reason or ""
            table.append([f"{MARK[row.kind]} {row.kind}", row.key, *cell_texts(row), why])
        if table:
            output.table(["CLASS", "KEY", *report.environments, "WHY / WHERE"], table)
        c = report.counts()
        out.print(
            f"{c['undeclared']} undeclared, {c['declared']} declared, {c['scale']} scale, "
            f"{c['equal']} equal.",
            style="bold" if report.ok else "bold red",
            markup=False,
        )
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


@click.command()
@env_argument
@click.argument("key", metavar="KEY.PATH")
@output_option
@click.pass_obj
def explain(ws: Workspace, env: str, key: str, output_format: str) -> None:
    """Where KEY.PATH of ENV gets its value: every layer that set or overrode it, in order,
    with file:line (`databases.primary.instance_class`, `config.app-config.LOG_LEVEL`)."""
    from envplane.cli import output
    from envplane.service.parity import explain as run_explain

    result = run_explain(ws, env, key)
    if output_format == "json":
        output.emit_json(result.to_json())
        return
    out = output.console()
    out.print(f"{env} {result.key} = {result.shown}", style="bold", markup=False)
    for layer in result.layers:
        mark = "→" if layer.wins else " "
        where = f"{layer.file}:{layer.line}" if layer.line else (layer.file or "")
        out.print(f"  {mark} {layer.name:28} {layer.shown:30} {where}", markup=False)
    for var in result.variables:
        where = f"{var.file}:{var.line}" if var.line else var.file or ""
        out.print(
            f"    uses {{{{{var.name}}}}} = {var.shown}  ({var.origin}) {where}", markup=False
        )


COMMANDS: list[click.Command] = [parity, explain]
