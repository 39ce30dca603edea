"""Commands that move data: clone, sync, backup, backups (list / prune), restore."""

from __future__ import annotations

from typing import Any

import click

from envplane.cli.common import dry_run_option, env_argument, output_option
from envplane.workspace import Workspace

unmasked_option = click.option(
    "--unmasked",
    is_flag=True,
    help="Copy data out of an approval_required environment without its masking rules.",
)


def _say(message: str, style: str | None = None) -> None:
    from envplane.cli import output

    output.console().print(message, style=style, markup=False)


def _bullets(title: str, lines: list[str]) -> None:
    if lines:
        _say(title, "bold")
        for line in lines:
            _say(f"  - {line}")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def _facts(facts: dict[str, dict[str, int]]) -> list[str]:
    return [
        f"{kind}: " + ", ".join(_size(v) if k == "bytes" else f"{v} {k}" for k, v in f.items())
        for kind, f in facts.items()
    ]


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@click.option("--with-data", is_flag=True, help="Also copy SRC's database, Redis keys and objects.")
@unmasked_option
@dry_run_option
@output_option
@click.pass_obj
def clone(
    ws: Workspace,
    source: str,
    target: str,
    with_data: bool,
    unmasked: bool,
    dry_run: bool,
    output_format: str,
) -> None:
    """Create DST with SRC's configuration (its own name, ports, secrets), optionally its data.

    SRC stays online and unchanged. Data leaving an approval_required environment is masked
    by its `data.masking` rules (refused without rules unless --unmasked)."""
    from envplane.cli import output
    from envplane.service import clone as do_clone
    from envplane.service.results_data import CloneView

    def show(planned: Any) -> None:
        if output_format != "json":
            _bullets("Data to copy (SRC stays online):", _facts(planned.data_facts))
            _bullets("Masking in the copy:", planned.masking)

    done = do_clone(
        ws,
        source,
        target,
        with_data=with_data,
        unmasked=unmasked,
        dry_run=dry_run,
        show_plan=None if output_format == "json" else output.print_plan,
        show=show,
    )
    if output_format == "json":
        output.emit_model(CloneView.of(done))
        return
    if dry_run:
        return
    _bullets("Masked:", done.masking)
    _say(
        f"cloned {source} -> {target} in {done.seconds:.1f}s"
        + (f" (data {done.data_seconds:.1f}s)" if with_data else "")
        + f"; operations {', '.join(done.operations)}",
        "bold green",
    )


@click.command()
@click.argument("source", metavar="SRC")
@click.argument("target", metavar="DST")
@click.option(
    "--type",
    "sync_type",
    type=click.Choice(["config", "data", "both"]),
    required=True,
    help="config: DST renders SRC's config for itself; data: DST's data replaced by SRC's.",
)
@click.option(
    "--force", is_flag=True, help="Needed to replace the data of an approval_required DST."
)
@unmasked_option
@dry_run_option
@output_option
@click.pass_obj
def sync(
    ws: Workspace,
    source: str,
    target: str,
    sync_type: str,
    force: bool,
    unmasked: bool,
    dry_run: bool,
    output_format: str,
) -> None:
    """Make DST's configuration and/or data SRC's; --dry-run prints the diff."""
    from envplane.cli import output
    from envplane.service import sync as do_sync
    from envplane.service.results_data import SyncView

    def show(planned: Any) -> None:
        if output_format == "json":
            return
        for env, facts in planned.data_facts.items():
            _bullets(f"Data of {env}:", _facts(facts))
        if planned.data_facts:
            _say(f"{target}'s data will be replaced by {source}'s.", "bold")
        _bullets("Masking in the copy:", planned.masking)

    done = do_sync(
        ws,
        source,
        target,
        sync_type=sync_type,
        force=force,
        unmasked=unmasked,
        dry_run=dry_run,
        show_plan=None if output_format == "json" else output.print_plan,
        show=show,
    )
    if output_format == "json":
        output.emit_model(SyncView.of(done))
        return
    if dry_run:
        return
    _say(
        f"synced {sync_type} {source} -> {target}; "
        f"operations {', '.join(done.operations) or 'none'}",
        "bold green",
    )


@click.command()
@env_argument
@click.option(
    "--type",
    "backup_type",
    type=click.Choice(["config", "data", "full"]),
    default="full",
    show_default=True,
)
@click.option(
    "--logical",
    is_flag=True,
    help="PostgreSQL as a pg_dump archive (portable across PostgreSQL versions, slower to "
    "restore) instead of a physical base backup.",
)
@click.option(
    "--to", "to_url", default=None, metavar="s3://BUCKET/PREFIX", help="Also push it to S3."
)
@dry_run_option
@output_option
@click.pass_obj
def backup(
    ws: Workspace,
    env: str,
    backup_type: str,
    logical: bool,
    to_url: str | None,
    dry_run: bool,
    output_format: str,
) -> None:
    """Back up ENV, online: PostgreSQL, a Redis snapshot, the objects, the config.

    PostgreSQL is a physical base backup of the cluster (restores by unpacking it, on the same
    PostgreSQL major) or, with --logical, a pg_dump archive. Stored under
    ENVPLANE_HOME/backups/<id> with a manifest (formats, sizes, sha256); encrypted at rest
    when the environment has security.kms_encryption on."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results_data import BackupView

    showing = output_format != "json" or dry_run

    def show(plan: Any) -> None:
        if not showing:
            return
        how = "pg_dump archive" if logical else "physical base backup"
        _say(f"Backup of {env} ({backup_type}{', encrypted' if plan.encrypted else ''}):", "bold")
        for name in plan.components:
            _say(f"  + {name}" + (f" ({how})" if name == "postgres" else ""))
        _bullets("Sizes now:", _facts(plan.facts))

    done = service.backup(
        ws,
        env,
        backup_type,
        logical=logical,
        to_url=to_url,
        dry_run=dry_run,
        measure=showing,
        show=show,
    )
    if dry_run:
        return
    if output_format == "json":
        output.emit_model(BackupView.of(done))
        return
    result = done.result
    assert result.manifest is not None and result.path is not None
    _say(
        f"backup {result.manifest.backup_id}: {_size(result.manifest.total_bytes)} in "
        f"{result.seconds:.1f}s at {result.path}",
        "bold green",
    )
    if done.pushed:
        _say(f"pushed to {done.pushed_to} ({done.pushed} objects)")


class _ListUnlessPrune(click.Group):
    """`backups [ENV]` lists, `backups prune [ENV]` prunes: a group whose default command is
    `list`, so an environment name where a command name would be goes to `list`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_ListUnlessPrune)
def backups() -> None:
    """List backups (newest first), or `backups prune [ENV]`: remove those older than the
    environment's backup_retention days."""


@backups.command(name="list")
@click.argument("env", required=False, metavar="[ENV]")
@output_option
@click.pass_obj
def backups_list(ws: Workspace, env: str | None, output_format: str) -> None:
    """List backups, newest first (all, or ENV's)."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results_data import BackupListing

    found = service.list_backups(ws, env)
    if output_format == "json":
        output.emit_model([BackupListing.of(b) for b in found])
        return
    rows = [
        [
            b.manifest.backup_id,
            b.manifest.source_environment,
            b.manifest.backup_type,
            b.manifest.created_at,
            _size(b.manifest.total_bytes),
            b.postgres_format,
            "yes" if b.manifest.encryption else "no",
        ]
        for b in found
    ]
    headers = ["BACKUP", "ENV", "TYPE", "CREATED", "SIZE", "POSTGRES", "ENCRYPTED"]
    output.table(headers, rows)


@backups.command(name="prune")
@click.argument("env", required=False, metavar="[ENV]")
@click.option("--dry-run", is_flag=True, help="List what would be removed.")
@output_option
@click.pass_obj
def backups_prune(ws: Workspace, env: str | None, dry_run: bool, output_format: str) -> None:
    """Remove the backups older than their environment's backup_retention days."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results_data import PruneView

    result = service.prune(ws, env, dry_run=dry_run)
    if output_format == "json":
        output.emit_model(PruneView.of(result, dry_run=dry_run))
        return
    verb = "would remove" if dry_run else "removed"
    for item in result.removed:
        m = item.manifest
        _say(f"{verb} {m.backup_id} (created {m.created_at}, {_size(m.total_bytes)})")
    for folder in result.unfinished:
        _say(f"{verb} unfinished backup directory {folder}")
    for env_name in result.skipped:
        _say(f"kept the backups of {env_name}: it has no backup_retention in the matrix")
    _say(f"{len(result.removed)} {verb}, {result.kept} kept.", "bold")


@click.command()
@env_argument
@click.argument("backup_id", metavar="BACKUP_ID")
@click.option("--from-env", default=None, metavar="OTHER", help="Allow a backup of OTHER.")
@click.option(
    "--from", "from_url", default=None, metavar="s3://BUCKET/PREFIX", help="Pull it from S3 first."
)
@click.option("--force", is_flag=True, help="Do not ask before replacing an existing environment.")
@unmasked_option
@dry_run_option
@output_option
@click.pass_obj
def restore(
    ws: Workspace,
    env: str,
    backup_id: str,
    from_env: str | None,
    from_url: str | None,
    force: bool,
    unmasked: bool,
    dry_run: bool,
    output_format: str,
) -> None:
    """Restore ENV from BACKUP_ID: every component's sha256 is verified first; a damaged
    backup is refused and ENV left as it was. A destroyed ENV is recreated first."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results_data import RestoreView

    def show(planned: Any) -> None:
        if output_format != "json" or dry_run:
            _say(
                f"Restore {env} from {backup_id} (a backup of {planned.source_environment}):",
                "bold",
            )
            for step in planned.steps:
                _say(f"  ~ {step}")

    def confirm(_planned: Any) -> bool:
        try:
            typed = click.prompt(
                f"This replaces the data of {env}. Type the environment name ({env}) to restore",
                default="",
                show_default=False,
            )
        except click.Abort:
            typed = ""
        return bool(typed.strip() == env)

    done = service.restore(
        ws,
        env,
        backup_id,
        from_env=from_env,
        from_url=from_url,
        force=force,
        unmasked=unmasked,
        dry_run=dry_run,
        show=show,
        confirm=confirm,
    )
    if dry_run:
        return
    if output_format == "json":
        output.emit_model(RestoreView.of(done))
        return
    for note in done.notes:
        _say(f"note: {note}", "yellow")
    _say(
        f"restored {env} from {backup_id} in {done.seconds:.1f}s; "
        f"operations {', '.join(done.operations)}",
        "bold green",
    )


COMMANDS = [clone, sync, backup, backups, restore]
