"""`envplane render`: a target's files for one environment, written offline."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from envplane.errors import BadInput
from envplane.names import check_env_name, check_ident
from envplane.render.model import DesiredEnvironment
from envplane.targets.registry import TARGETS, spec
from envplane.workspace import Workspace


@dataclass(frozen=True)
class RenderedFiles:
    environment: str
    target: str
    files: list[Path]
    desired: DesiredEnvironment


def file_targets() -> tuple[str, ...]:
    """The targets that render to files (for the CLI's choices)."""
    return tuple(name for name in TARGETS if spec(name).write_files is not None)


def render_files(
    ws: Workspace, env: str, out_dir: Path, *, target: str, template: str | None = None
) -> RenderedFiles:
    check_env_name(env)
    if template is not None:
        check_ident(template, what="template name")
    target_spec = spec(target)
    if target_spec.write_files is None:
        raise BadInput(
            f"the {target} target does not render to files",
            hint=f"targets that do: {', '.join(file_targets())}",
        )
    rendered = target_spec.render(
        ws.matrix,
        env,
        template=template,
        ports={},
        held_ports=lambda: (),
        env_dir=ws.env_dir(env),
    )
    written = target_spec.write_files(rendered.desired, out_dir)
    return RenderedFiles(env, target, written, rendered.desired)
