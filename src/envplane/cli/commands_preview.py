"""Previews, the reaper, sleep and wake: per-branch environments that go away (issue 13)."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from envplane.cli.common import dry_run_option, env_argument, output_option
from envplane.workspace import Workspace


def _say(message: str, style: str | None = None) -> None:
    from envplane.cli import output

    output.console().print(message, style=style, markup=False)


def _minutes(m: int) -> str:
    if m < 0:
        return f"expired {-m} min ago"
    return f"in {m} min" if m < 120 else f"in {m // 60} h {m % 60} min"


def _money(value: str | None, unit: str = "") -> str:
    return f"${value}{unit}" if value is not None else "unpriced"


@click.group()
def preview() -> None:
    """Per-branch preview environments: derived from `previews.from`, with a TTL."""


@preview.command("create")
@click.option("--branch", required=True, help="The branch; the preview is named from it.")
@click.option("--from", "source", metavar="ENV", help="Derive from ENV (default previews.from).")
@click.option("--ttl", help="Lifetime from now, e.g. 30m, 48h, 7d (default previews.ttl).")
@click.option(
    "--with-data",
    is_flag=True,
    help="Copy the source's data (masked when the source is approval_required).",
)
@click.option("--release", "release", metavar="REL", help="Deploy this release once created.")
@output_option
@click.pass_obj
def preview_create(
    ws: Workspace,
    branch: str,
    source: str | None,
    ttl: str | None,
    with_data: bool,
    release: str | None,
    output_format: str,
) -> None:
    """Create the preview of BRANCH, or update it (and move its expiry on) if it exists.

    Prints its name, URL, expiry and cost per hour; `-o json` is the document a CI job
    posts on its pull request."""
    from envplane.cli import output
    from envplane.service.previews import preview_create as do_create

    done = do_create(
        ws,
        branch,
        source=source,
        ttl=ttl,
        with_data=with_data,
        release=release,
        show_plan=None if output_format == "json" else output.print_plan,
    )
    if output_format == "json":
        output.emit_model(done)
        return
    for line in done.masking:
        _say(f"  masked: {line}")
    for line in done.messages:
        _say(line)
    verb = "created" if done.created else "updated"
    _say(f"preview {done.name} {verb} (branch {done.branch}, from {done.source})", "bold")
    _say(f"  url:     {done.url or '-'}")
    expires = f"{done.expires_at:%Y-%m-%d %H:%M} UTC ({_minutes(done.expires_in_minutes)})"
    _say(f"  expires: {expires}")
    _say(f"  cost:    {_money(done.cost_per_hour, '/h')} while awake")
    if done.release is not None:
        _say(f"  release: {done.release.release} ({done.release.status})")


@preview.command("list")
@output_option
@click.pass_obj
def preview_list(ws: Workspace, output_format: str) -> None:
    """The previews: branch, source, created, expiry, awake/asleep, cost so far."""
    from envplane.cli import output
    from envplane.service.previews import preview_list as do_list

    rows = do_list(ws)
    if output_format == "json":
        output.emit_model(rows)
        return
    if not rows:
        _say("no previews")
        return
    output.table(
        ["NAME", "BRANCH", "FROM", "CREATED", "EXPIRES", "STATE", "STATUS", "COST SO FAR"],
        [
            [
                r.name,
                r.branch,
                r.source,
                f"{r.created_at:%Y-%m-%d %H:%M}",
                _minutes(r.expires_in_minutes),
                r.state,
                r.status,
                _money(r.cost_so_far),
            ]
            for r in rows
        ],
    )


@preview.command("extend")
@click.argument("name", metavar="NAME")
@click.option("--ttl", required=True, help="New lifetime from now, e.g. 24h (up to max_ttl).")
@output_option
@click.pass_obj
def preview_extend(ws: Workspace, name: str, ttl: str, output_format: str) -> None:
    """Keep preview NAME for TTL from now (within previews.max_ttl of its creation)."""
    from envplane.cli import output
    from envplane.service.previews import preview_extend as do_extend

    done = do_extend(ws, name, ttl)
    if output_format == "json":
        output.emit_model(done)
        return
    _say(f"{done.name} expires {done.expires_at:%Y-%m-%d %H:%M} UTC")


@preview.command("destroy")
@click.argument("name", metavar="NAME")
@dry_run_option
@click.pass_obj
def preview_destroy(ws: Workspace, name: str, dry_run: bool) -> None:
    """Destroy preview NAME (the verified destroy; it asks nothing: NAME says which)."""
    from envplane.cli import output
    from envplane.service.previews import preview_destroy as do_destroy

    applied, messages = do_destroy(ws, name, dry_run=dry_run, show=output.print_plan)
    for message in messages:
        _say(message)
    if applied:
        _say(f"{name} destroyed; verified: no process, port, directory or secret of it remains")


def _show_gc(view: Any) -> None:
    verb = "would destroy" if view.dry_run else "destroyed"
    for name in view.expired:
        _say(f"expired: {name} ({verb})")
    for name in view.resumed:
        _say(
            f"finished the interrupted destroy of {name}"
            if not view.dry_run
            else f"would finish the interrupted destroy of {name}"
        )
    for name in view.put_to_sleep:
        _say(f"idle: {name} ({'would be put' if view.dry_run else 'put'} to sleep)")
    for name, why in view.failed.items():
        _say(f"failed: {name}: {why}", "red")
    for orphan in view.orphans:
        state = "removed" if orphan.name in view.orphans_removed else "orphan"
        _say(f"{state}: {orphan.name}")
        for line in (
            ([f"directory {orphan.directory}"] if orphan.exists else [])
            + [f"process {p}" for p in orphan.processes]
            + [f"port {p} listening" for p in orphan.ports]
            + orphan.elsewhere
        ):
            _say(f"  - {line}")
    for name, left in view.orphans_left.items():
        _say(f"could not remove all of {name}: {'; '.join(left)}", "red")
    if view.orphans and not view.orphans_removed and not view.orphans_left:
        _say("orphans are only listed; `envplane gc --orphans` removes them")
    if not (view.expired or view.resumed or view.put_to_sleep or view.orphans or view.failed):
        _say(f"nothing to reap ({view.seconds:.2f}s)")


@click.command("gc")
@dry_run_option
@click.option("--orphans", is_flag=True, help="Also remove what no recorded environment owns.")
@click.option(
    "--every", metavar="DURATION", help="Run again every DURATION (e.g. 5m) until SIGTERM."
)
@click.option("--runs", type=click.IntRange(min=1), help="With --every: stop after N passes.")
@output_option
@click.pass_obj
def gc(
    ws: Workspace,
    dry_run: bool,
    orphans: bool,
    every: str | None,
    runs: int | None,
    output_format: str,
) -> None:
    """Destroy expired previews (verified), finish destroys a killed gc left, put idle
    previews to sleep (previews.sleep_after), and list orphans under ENVPLANE_HOME.

    With --every it keeps running (a pass, then a wait) until SIGTERM or --runs passes."""
    from envplane.cli import output
    from envplane.service import reaping as svc

    def each(view: Any) -> None:
        if output_format == "json":
            output.emit_model(view)  # one document per pass
        else:
            _show_gc(view)

    if every is None:
        if runs is not None:
            raise click.UsageError("--runs goes with --every")
        each(svc.gc(ws, dry_run=dry_run, orphans=orphans))
        return
    from envplane.previews.spec import parse_ttl

    interval = parse_ttl(every, 0, what="--every")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        svc.gc_every(ws, interval, stop, runs=runs, each=each, dry_run=dry_run, orphans=orphans)
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command("sleep")
@env_argument
@output_option
@click.pass_obj
def sleep(ws: Workspace, env: str, output_format: str) -> None:
    """Stop ENV's services and servers; keep its data, ports and URL (which answers 503
    "asleep", and with previews.wake_on_request wakes it)."""
    from envplane.cli import output
    from envplane.service import sleeping as svc  # not previews: creating one is not needed

    done = svc.sleep(ws, env)
    if output_format == "json":
        output.emit_model(done)
        return
    for message in done.messages:
        _say(message)
    if done.operation_id:
        _say(f"{env} is asleep: stopped {', '.join(done.programs) or 'nothing'}")


@click.command("wake")
@env_argument
@output_option
@click.pass_obj
def wake(ws: Workspace, env: str, output_format: str) -> None:
    """Bring a sleeping ENV back: every program started again and healthy, same data, same URL."""
    from envplane.cli import output
    from envplane.service import sleeping as svc  # not previews: creating one is not needed

    done = svc.wake(ws, env, show_plan=None if output_format == "json" else output.print_plan)
    if output_format == "json":
        output.emit_model(done)
        return
    _say(f"{env} is awake ({done.seconds:.1f}s)")


COMMANDS: list[click.Command] = [preview, gc, sleep, wake]
