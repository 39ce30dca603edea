"""Commands that change environments: create, update, destroy, resume; and check / plan."""

from __future__ import annotations

from pathlib import Path

import click

from envplane.cli.common import (
    TARGET_CHOICE,
    TARGET_HELP,
    dry_run_option,
    env_argument,
    output_option,
    target_option,
)
from envplane.workspace import Workspace


def _finish(ws: Workspace, outcome: object, verb: str) -> None:
    from envplane.cli import output
    from envplane.engine.outcome import Outcome

    assert isinstance(outcome, Outcome)
    if not outcome.applied:
        return
    output.console().print(
        f"{verb} {outcome.environment} in {outcome.seconds:.1f}s "
        f"({outcome.plan.summary()}; operation {outcome.operation_id})",
        style="bold green",
        markup=False,
    )


@click.command()
@output_option
@click.pass_obj
def check(ws: Workspace, output_format: str) -> None:
    """Validate the matrix and every environment's config templates (exit 0 or 2)."""
    from envplane.check import check_matrix
    from envplane.cli import output
    from envplane.service.results import MatrixCheckView

    report = check_matrix(ws.matrix)
    if output_format == "json":
        output.emit_model(MatrixCheckView.of(report))
        return
    output.console().print(report.text(), markup=False)


@click.command()
@env_argument
@target_option
@click.option(
    "--template", default=None, help="Config template (for an environment not yet created)."
)
@click.option(
    "--save", is_flag=True, help="Keep the plan in the state store; prints its id for `apply`."
)
@click.option(
    "--out",
    "out_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the saved plan to FILE (`envplane apply FILE`); implies --save.",
)
@output_option
@click.pass_obj
def plan(
    ws: Workspace,
    env: str,
    target: str | None,
    template: str | None,
    save: bool,
    out_file: Path | None,
    output_format: str,
) -> None:
    """Show what create (or update, if ENV exists) would do. Changes nothing.

    With --save (or --out FILE) the plan is kept: `envplane apply PLAN_ID` applies exactly
    it, or refuses (exit 3) if the matrix, templates or environment changed since."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results import SavedPlanView

    if save or out_file is not None:
        result = service.save_plan(ws, env, target=target, template=template, out=out_file)
    else:
        result = service.plan(ws, env, target=target, template=template)
    if output_format == "json":
        output.emit_model(SavedPlanView.of(result))
        return
    output.print_plan(result.plan)
    if result.id:
        where = f" (and {out_file})" if out_file else ""
        output.console().print(
            f"Saved plan {result.id}{where}. Apply it with: envplane apply {result.id}",
            style="bold",
            markup=False,
        )


@click.command()
@click.argument("plan_ref", metavar="PLAN_ID|PLANFILE")
@click.pass_obj
def apply(ws: Workspace, plan_ref: str) -> None:
    """Apply a plan saved by `envplane plan ENV --save` (or `--out FILE`), exactly as shown
    then; refused (exit 3) when the matrix, templates or environment changed since."""
    from envplane import service
    from envplane.cli import output

    outcome = service.apply_plan(ws, plan_ref)
    if not outcome.plan.changes:
        output.console().print("No changes. The environment matches the matrix.", markup=False)
    _finish(ws, outcome, "applied")


@click.command()
@env_argument
@click.option(
    "--template", default=None, help="Config template directory name (default: the env's own)."
)
@click.option("--target", type=TARGET_CHOICE, default="local", show_default=True, help=TARGET_HELP)
@dry_run_option
@click.pass_obj
def create(ws: Workspace, env: str, template: str | None, target: str, dry_run: bool) -> None:
    """Create ENV from the matrix: plan, then apply step by step, then verify health."""
    from envplane.cli import output
    from envplane.service import create as do_create

    outcome = do_create(
        ws, env, template=template, target=target, dry_run=dry_run, show_plan=output.print_plan
    )
    if dry_run:
        _saved_plan_hint(env)
    _finish(ws, outcome, "created")


def _saved_plan_hint(env: str) -> None:
    """A dry run allocates nothing: the ports a later run picks may differ. A saved plan is
    the one plan with one set of allocations."""
    from envplane.cli import output

    output.console().print(
        f"Dry run: nothing was changed or reserved. To apply exactly this plan, with these "
        f"ports: envplane plan {env} --save, then envplane apply PLAN_ID",
        style="dim",
        markup=False,
    )


@click.command()
@env_argument
@dry_run_option
@click.pass_obj
def update(ws: Workspace, env: str, dry_run: bool) -> None:
    """Apply only what changed in the matrix or templates since ENV was last applied."""
    from envplane.cli import output
    from envplane.service import update as do_update

    outcome = do_update(ws, env, dry_run=dry_run, show_plan=output.print_plan)
    if not outcome.plan.changes:
        output.console().print("No changes. The environment matches the matrix.", markup=False)
    elif dry_run:
        _saved_plan_hint(env)
    _finish(ws, outcome, "updated")


@click.command()
@env_argument
@click.option(
    "--force", is_flag=True, help="Do not ask; also required for approval_required environments."
)
@dry_run_option
@click.pass_obj
def destroy(ws: Workspace, env: str, force: bool, dry_run: bool) -> None:
    """Destroy ENV and verify that none of its processes, ports, directories or secrets remain.

    An ENV destroyed already is left as it is (exit 0), so a cleanup can be repeated."""
    from envplane.cli import output
    from envplane.service import destroy as do_destroy

    def confirm(_plan: object) -> bool:
        try:
            typed = click.prompt(
                f"Type the environment name ({env}) to destroy it", default="", show_default=False
            )
        except click.Abort:
            typed = ""
        return bool(typed.strip() == env)

    outcome = do_destroy(
        ws, env, force=force, dry_run=dry_run, show=output.print_plan, confirm=confirm
    )
    if not outcome.applied and outcome.messages:  # destroyed already: done, exit 0
        for message in outcome.messages:
            output.console().print(message, markup=False)
        return
    if dry_run:
        return
    _finish(ws, outcome, "destroyed")
    output.console().print(
        "verified: no process, port, directory or secret of it remains", markup=False
    )


@click.command()
@click.argument("operation_id", metavar="OP_ID")
@click.pass_obj
def resume(ws: Workspace, operation_id: str) -> None:
    """Finish an interrupted or failed operation (see `envplane history`)."""
    from envplane import service
    from envplane.cli import output

    outcome = service.resume(ws, operation_id)
    for message in outcome.messages:
        output.console().print(message, markup=False)
    if outcome.applied:
        output.print_plan(outcome.plan)
    _finish(ws, outcome, "resumed")


COMMANDS = [check, plan, apply, create, update, destroy, resume]
