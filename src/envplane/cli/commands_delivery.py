"""Commands that move releases: release, releases, status, deploy, promote, approve, reject,
promotions, rollback, scale-down."""

from __future__ import annotations

import click

from envplane.cli.common import dry_run_option, env_argument, output_option
from envplane.workspace import Workspace

STRATEGIES = click.Choice(["recreate", "rolling", "blue_green", "canary"])


def _print(text: str, style: str | None = None) -> None:
    from envplane.cli import output

    output.console().print(text, style=style, markup=False)


def _show_deploy(view: object, output_format: str, verb: str) -> None:
    from envplane.cli import output
    from envplane.service.delivery import DeployView

    assert isinstance(view, DeployView)
    if output_format == "json":
        output.emit_model(view)
        return
    if view.status == "planned":
        _print(f"{verb} {view.release} into {view.environment} by {view.strategy} (dry run):")
        for m in view.moves:
            _print(
                f"  {m.service}: {m.from_version} on {m.from_color} -> {m.to_version} on "
                f"{m.to_color} ({m.replicas} replica{'s' if m.replicas != 1 else ''})"
            )
        if not view.moves:
            _print("  nothing to change: every service already runs its version")
        return
    for message in view.messages:
        _print(message)
    if view.status == "unchanged":
        return
    extra = []
    if "downtime_seconds" in view.detail:
        extra.append(f"downtime {view.detail['downtime_seconds']:.2f}s")
    if "switch_seconds" in view.detail:
        extra.append(f"switch {view.detail['switch_seconds']:.2f}s")
    tail = f" ({', '.join(extra)})" if extra else ""
    _print(
        f"{verb} {view.release} into {view.environment} by {view.strategy}: {view.status} in "
        f"{view.seconds:.1f}s{tail}; operation {view.operation_id}",
        style="bold green",
    )


@click.group(invoke_without_command=False)
def release() -> None:
    """Record releases: every service's version, immutable."""


@release.command("create")
@click.option(
    "--service",
    "pins",
    multiple=True,
    metavar="NAME=VERSION",
    help="A service's version (repeat for several); the others keep theirs.",
)
@click.option(
    "--from-env", default=None, metavar="ENV", help="Start from the versions ENV runs now."
)
@click.option("-m", "--message", "note", default=None, help="A note kept with the release.")
@output_option
@click.pass_obj
def release_create(
    ws: Workspace, pins: tuple[str, ...], from_env: str | None, note: str | None, output_format: str
) -> None:
    """Record a release and print its id (rel-...).

    Services not named keep the version --from-env runs, else the matrix's initial one.
    """
    from envplane.cli import output
    from envplane.service.delivery import release_create as create

    view = create(ws, list(pins), from_env=from_env, note=note)
    if output_format == "json":
        output.emit_model(view)
        return
    click.echo(view.id)
    output.progress(", ".join(f"{k}={v}" for k, v in sorted(view.services.items())))


@click.command()
@output_option
@click.pass_obj
def releases(ws: Workspace, output_format: str) -> None:
    """List recorded releases, newest first."""
    from envplane.cli import output
    from envplane.service.delivery import releases as list_releases

    views = list_releases(ws)
    if output_format == "json":
        output.emit_model(views)
        return
    if not views:
        _print("no releases yet: envplane release create --service NAME=VERSION")
        return
    for v in views:
        versions = ", ".join(f"{k}={val}" for k, val in sorted(v.services.items()))
        when = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        _print(f"{v.id}  {when}  {v.created_by:<10} {versions}" + (f"  {v.note}" if v.note else ""))


@click.command()
@env_argument
@output_option
@click.pass_obj
def status(ws: Workspace, env: str, output_format: str) -> None:
    """The release live in ENV, each service's version and color, and what is in flight."""
    from envplane.cli import output
    from envplane.service.delivery import status as get_status

    view = get_status(ws, env)
    if output_format == "json":
        output.emit_model(view)
        return
    _print(f"{env}: release {view.release or '(none yet: the matrix initial versions)'}")
    for name, run in sorted(view.services.items()):
        kept = view.retained.get(name)
        note = f"  ({kept['color']} {kept['version']} kept until {kept['until']})" if kept else ""
        _print(f"  {name}: {run['version']} on {run['color']}{note}")
    if view.in_flight:
        f = view.in_flight
        _print(f"in flight: {f.kind} of {f.release} by {f.strategy}, {f.status} ({f.phase})")
    if view.upstream:
        _print(f"promoted from: {view.upstream}")


@click.command()
@env_argument
@click.argument("release_id", metavar="RELEASE")
@click.option("--strategy", type=STRATEGIES, default=None, help="One of the ENV's alternatives.")
@click.option("--force", is_flag=True, help="Deploy where approval is required (audited).")
@dry_run_option
@output_option
@click.pass_obj
def deploy(
    ws: Workspace,
    env: str,
    release_id: str,
    strategy: str | None,
    force: bool,
    dry_run: bool,
    output_format: str,
) -> None:
    """Deploy RELEASE into ENV by its primary strategy (or --strategy, an alternative).

    Exit 1 when it failed and was rolled back; 3 when approval is required (use `promote`)
    or a canary paused.
    """
    from envplane.service.delivery import deploy as run

    view = run(ws, env, release_id, strategy=strategy, dry_run=dry_run, force=force)
    _show_deploy(view, output_format, "deploy")


@click.command()
@click.argument("release_id", metavar="RELEASE", required=False)
@click.option("--to", "env", required=True, metavar="ENV", help="The environment to promote to.")
@click.option("--continue", "resume", is_flag=True, help="Continue ENV's paused canary.")
@click.option("-m", "--message", default=None, help="Why, kept with the promotion request.")
@dry_run_option
@output_option
@click.pass_obj
def promote(
    ws: Workspace,
    release_id: str | None,
    env: str,
    resume: bool,
    message: str | None,
    dry_run: bool,
    output_format: str,
) -> None:
    """Deploy RELEASE into ENV behind its gates: live and healthy upstream, validated there,
    soaked, approved. A closed gate exits 3 and names it."""
    from envplane.cli import output
    from envplane.service.delivery import continue_rollout
    from envplane.service.delivery import promote as run

    if resume:
        _show_deploy(continue_rollout(ws, env), output_format, "continue")
        return
    if release_id is None:
        raise click.UsageError("give the RELEASE to promote (or --continue)")
    view = run(ws, release_id, env, dry_run=dry_run, message=message)
    if output_format == "json":
        output.emit_model(view)
        return
    for gate, state in view.gates.items():
        _print(f"gate {gate}: {state}")
    if view.deployed is not None:
        _show_deploy(view.deployed, "text", "promote")


def _decision(verb: str) -> click.Command:
    @click.command(name=verb)
    @click.argument("promotion_id", metavar="PROMOTION_ID")
    @click.option("-m", "--message", default=None, help="Why (kept in the audit log).")
    @output_option
    @click.pass_obj
    def command(ws: Workspace, promotion_id: str, message: str | None, output_format: str) -> None:
        from envplane.cli import output
        from envplane.service import delivery

        view = getattr(delivery, verb)(ws, promotion_id, message)
        if output_format == "json":
            output.emit_model(view)
            return
        _print(f"{view.id}: {view.status} ({view.release} -> {view.environment})")
        if view.status == "approved":
            _print(f"deploy it: envplane promote {view.release} --to {view.environment}")

    command.help = (
        f"{verb.capitalize()} a promotion. The identity is your OS user; the requester "
        "cannot decide their own promotion (four-eyes)."
    )
    return command


@click.command()
@click.option("--env", default=None, help="Only promotions into ENV.")
@output_option
@click.pass_obj
def promotions(ws: Workspace, env: str | None, output_format: str) -> None:
    """List promotion requests and their approvals."""
    from envplane.cli import output
    from envplane.service.delivery import promotions as list_promotions

    views = list_promotions(ws, env)
    if output_format == "json":
        output.emit_model(views)
        return
    for v in views:
        who = ", ".join(f"{d.decision} by {d.actor}" for d in v.decisions) or "no decisions"
        _print(
            f"{v.id}  {v.release} -> {v.environment}  {v.status}  requested by "
            f"{v.requested_by}; {who} (needs {v.approvals_needed})"
        )


@click.command()
@env_argument
@click.option("--to", "to", default=None, metavar="RELEASE", help="Default: the previous good.")
@click.option("--with-data", "data", flag_value="restore", help="Restore the pre-migration data.")
@click.option("--keep-data", "data", flag_value="keep", help="Roll back the code only.")
@dry_run_option
@output_option
@click.pass_obj
def rollback(
    ws: Workspace, env: str, to: str | None, data: str | None, dry_run: bool, output_format: str
) -> None:
    """Roll ENV back to the previous good release (or --to RELEASE). Within blue-green's
    scale-down delay it is a traffic switch only."""
    from envplane.service.delivery import rollback as run

    view = run(ws, env, to=to, data=data or "ask", dry_run=dry_run)
    _show_deploy(view, output_format, "rollback")


@click.command("scale-down")
@env_argument
@click.option(
    "--when-due",
    is_flag=True,
    help="Wait until each kept color's scale_down_delay is over first (a blue-green deploy "
    "starts this in the background).",
)
@output_option
@click.pass_obj
def scale_down(ws: Workspace, env: str, when_due: bool, output_format: str) -> None:
    """Stop the old color blue-green keeps in ENV for a switch-only rollback; after it, a
    rollback is a full rollout."""
    from envplane.cli import output
    from envplane.service.delivery import scale_down as run

    view = run(ws, env, when_due=when_due)
    if output_format == "json":
        output.emit_model(view)
        return
    for service, color in view.stopped.items():
        _print(f"{service}: the kept {color} color stopped")
    for service, until in view.kept.items():
        _print(f"{service}: the old color stays until {until}")
    if not view.stopped and not view.kept:
        _print(f"{env} keeps no old color")


COMMANDS = [
    release,
    releases,
    status,
    deploy,
    promote,
    _decision("approve"),
    _decision("reject"),
    promotions,
    rollback,
    scale_down,
]
