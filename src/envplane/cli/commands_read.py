"""Read-only commands: list, info, history, validate. Each has `-o json`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from envplane.cli.common import env_argument, output_option
from envplane.errors import EXIT_FAILED
from envplane.workspace import Workspace

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord


@click.command(name="list")
@output_option
@click.pass_obj
def list_(ws: Workspace, output_format: str) -> None:
    """List environments: status, target, region, services ready/desired."""
    from envplane.cli import output
    from envplane.service import list_environments
    from envplane.service.results import EnvironmentView

    infos = list_environments(ws)
    if output_format == "json":
        output.emit_model([EnvironmentView.of(i) for i in infos])
        return
    rows = []
    for i in infos:
        services = ", ".join(f"{s.name} {s.ready}/{s.desired}" for s in i.services) or "-"
        last = i.last_operation
        op = f"{last.kind} {last.status}" if last else "-"
        rows.append([i.name, i.status, i.target or "-", i.region or "-", services, op])
    output.table(["NAME", "STATUS", "TARGET", "REGION", "SERVICES", "LAST OPERATION"], rows)


@click.command()
@env_argument
@click.option(
    "--show-secrets", is_flag=True, help="Show passwords in the postgresql:// and redis:// URLs."
)
@output_option
@click.pass_obj
def info(ws: Workspace, env: str, show_secrets: bool, output_format: str) -> None:
    """Describe ENV: status, target, region, endpoints, services ready/desired, last operation."""
    from envplane.cli import output
    from envplane.service import info as get_info
    from envplane.service.results import EnvironmentView

    result = get_info(ws, env)
    data = EnvironmentView.of(result, show_secrets=show_secrets).model_dump(mode="json")
    if output_format == "json":
        output.emit_json(data)
        return
    out = output.console()
    out.print(f"Environment {result.name}", style="bold", markup=False)
    for label in ("status", "target", "region", "template", "platform"):
        if data[label]:
            out.print(f"  {label + ':':10} {data[label]}", markup=False)
    if data["endpoints"]:
        out.print("Endpoints:", style="bold")
        for name, url in data["endpoints"].items():
            out.print(f"  {name + ':':11} {url}", markup=False)
    if result.services:
        out.print("Services (ready/desired):", style="bold")
        for s in result.services:
            mark = "ok" if s.healthy else "DEGRADED"
            version = result.versions.get(s.name)
            runs = f"  {version}" if version else ""
            out.print(f"  {s.name + ':':11} {s.ready}/{s.desired} {mark}{runs}", markup=False)
    if result.release:
        out.print(f"Release:    {result.release}", markup=False)
    if result.last_operation:
        lo = result.last_operation
        out.print(f"Last operation: {lo.id} {_when(lo)}", markup=False)
    if result.notes:
        out.print(f"Not honoured on the {result.target} target:", style="bold")
        for note in result.notes:
            out.print(f"  - {note}", markup=False)
    front = data["endpoints"].get("frontend")
    if front:
        out.print(f"Open {front}", style="bold green", markup=False)


@click.command()
@click.argument("env", required=False, metavar="[ENV]")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@output_option
@click.pass_obj
def history(ws: Workspace, env: str | None, limit: int, output_format: str) -> None:
    """Operations (newest first) with their steps; OP_IDs for `envplane resume`."""
    from envplane.cli import output
    from envplane.service import history as get_history
    from envplane.service.results import OperationView

    ops = get_history(ws, env, limit=limit)
    if output_format == "json":
        output.emit_model([OperationView.of(o) for o in ops])
        return
    out = output.console()
    if not ops:
        out.print("No operations yet." if env is None else f"No operations on {env} yet.")
        return
    ids, envs = max(len(o.id) for o in ops), max(len(o.env) for o in ops)
    for o in ops:
        head = f"{o.id.ljust(ids)}  {o.env.ljust(envs)}  {_when(o)}"
        out.print(head, style="bold", markup=False)
        if o.error:
            out.print(f"    error: {o.error}", style="red", markup=False)
        keys = max((len(s.resource_key) for s in o.steps), default=0)
        for step in o.steps:
            line = (
                f"    {step.index:>3}  {step.action:<7} {step.resource_key.ljust(keys)}  "
                f"{step.status:<7} {step.detail}"
            )
            out.print(line.rstrip(), markup=False)


def _when(op: OperationRecord) -> str:
    """ "KIND STATUS, started T, finished T" (ISO 8601, UTC)."""
    from envplane.service.results import iso

    finished = iso(op.finished_at, "seconds") if op.finished_at else "not yet"
    return f"{op.kind} {op.status}, started {iso(op.started_at, 'seconds')}, finished {finished}"


@click.command()
@env_argument
@click.option(
    "--level",
    type=click.Choice(["basic", "standard", "comprehensive"]),
    default=None,
    help="Default: the environment's validation_required.",
)
@click.option(
    "--junit", "junit_path", type=click.Path(dir_okay=False), default=None, help="Write JUnit XML."
)
@output_option
@click.pass_obj
def validate(
    ws: Workspace, env: str, level: str | None, junit_path: str | None, output_format: str
) -> None:
    """Check ENV's infrastructure, applications, networking, security and monitoring."""
    from envplane.cli import output
    from envplane.service import validate as run_validation
    from envplane.service.results import ValidationView
    from envplane.validate import write_junit

    report = run_validation(ws, env, level=level)
    if junit_path:
        write_junit(report, junit_path)
    if output_format == "json":
        output.emit_model(ValidationView.of(report))
    else:
        out = output.console()
        out.print(f"Validation of {env} ({report.level})", style="bold", markup=False)
        for c in report.checks:
            style = {"pass": "green", "fail": "red", "skip": "dim"}[c.status]
            out.print(
                f"  {c.status.upper():4} {c.category}: {c.name} - {c.detail}",
                style=style,
                markup=False,
            )
        failed = [c for c in report.checks if c.status == "fail"]
        verdict = f"{len(failed)} failed" if failed else "healthy"
        out.print(f"{len(report.checks)} checks, {verdict}.", style="bold", markup=False)
    if not report.ok:
        raise click.exceptions.Exit(EXIT_FAILED)


COMMANDS = [list_, info, history, validate]
