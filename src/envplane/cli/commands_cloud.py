"""`envplane render`: the cloud target's files for one environment, written offline.

Which targets render to files is the registry's to say (`TargetSpec.write_files`)."""

from __future__ import annotations

from pathlib import Path

import click

from envplane.cli.common import env_argument, output_option
from envplane.targets.registry import SPECS
from envplane.workspace import Workspace

_WRITES_FILES = [s.name for s in SPECS if s.write_files is not None]


@click.command()
@env_argument
@click.option(
    "--target",
    type=click.Choice(_WRITES_FILES),
    default=_WRITES_FILES[0],
    show_default=True,
    help=f"Only the {' and '.join(_WRITES_FILES)} target renders to files.",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for terraform/, kubernetes/ and helm/ (created if missing).",
)
@click.option("--template", default=None, help="Config template (default: the env's own).")
@output_option
@click.pass_obj
def render(
    ws: Workspace,
    env: str,
    target: str,
    out_dir: Path,
    template: str | None,
    output_format: str,
) -> None:
    """Write ENV's Terraform JSON, Kubernetes manifests and Helm values to --out. Offline:
    no cloud is called; the same matrix gives the same bytes."""
    from envplane import service
    from envplane.cli import output
    from envplane.service.results import RenderView

    done = service.render_files(ws, env, out_dir, target=target, template=template)
    if output_format == "json":
        output.emit_model(RenderView.of(done))
        return
    desired, written = done.desired, done.files
    out = output.console()
    for path in written:
        out.print(f"  wrote {path}", markup=False)
    if desired.notes:
        out.print(f"Not honoured on the {target} target:", style="bold")
        for note in desired.notes:
            out.print(f"  - {note}", markup=False)
    out.print(f"Rendered {env} for the {target} target: {len(written)} files.", style="bold")


COMMANDS = [render]
