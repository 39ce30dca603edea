"""Cost and prices: what environments cost, from a shipped price table (issue 13)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from envplane.cli.common import output_option
from envplane.workspace import Workspace


@click.command()
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option(
    "--at",
    type=click.Choice(["min", "desired", "max"]),
    default="desired",
    show_default=True,
    help="Which node group size to price: min_size, desired_size or max_size.",
)
@output_option
@click.pass_obj
def cost(ws: Workspace, envs: tuple[str, ...], at: str, output_format: str) -> None:
    """Monthly cost (730 hours) of each ENV at AWS on-demand list prices, per resource line.

    Default: every environment of the matrix, and recorded ones derived from it (previews,
    clones). What the price table cannot price is listed as unpriced, never as $0. An
    environment created on the local target also shows what it uses on this machine."""
    from envplane.cli import cost_view
    from envplane.service.cost import cost as do_cost

    report = do_cost(ws, list(envs) or None, at=at)  # type: ignore[arg-type]
    if output_format == "json":
        # pydantic's own encoder: for a thousand environments several times faster than
        # model_dump and json.dumps, with the same document.
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    cost_view.print_report(report)


@click.group()
def prices() -> None:
    """The price table `cost` and every plan use (shipped, or imported under ENVPLANE_HOME)."""


@prices.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@output_option
@click.pass_obj
def prices_import(ws: Workspace, file: Path, output_format: str) -> None:
    """Refresh the price table from an AWS Price List offer file (AmazonEC2, AmazonRDS or
    AmazonElastiCache, the bulk JSON format; read as a stream). Offline; the result is
    written under ENVPLANE_HOME and used instead of the shipped table from then on."""
    from envplane.cli import output
    from envplane.service.cost import import_prices

    result = import_prices(ws, file)
    if output_format == "json":
        output.emit_model(result)
        return
    counts = ", ".join(f"{n} {what}" for what, n in sorted(result.prices.items()))
    output.console().print(
        f"imported {result.offer} prices ({counts}) published {result.published or '?'}; "
        f"table written to {result.path} (as of {result.table.as_of})",
        markup=False,
    )


COMMANDS: list[click.Command] = [cost, prices]
