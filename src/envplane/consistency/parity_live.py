"""`parity --live`: what runs in each environment instead of what the matrix says.

Compared: the release live there (`release`), each service's running version
(`services.<name>.version`: the live release's, else the matrix's initial version) and color,
and the rendered files the services read (`config.<configmap>.<key>`, read from the
environment's `config/` directory in ENVPLANE_HOME). A file that is exactly what envplane
renders for that environment is shown as the matrix comparison shows it (with stand-ins for
envplane's own placeholders, so two environments running the same template are equal); a file
changed on disk is shown as it is, its envplane-made values (ports, paths, namespace, database
name) replaced by their placeholders, so the change itself is what differs.

An environment not created is listed as such (`not_created`), not an error, unless none is.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from envplane.consistency.flatten import Setting, config_settings
from envplane.consistency.parity import ParityReport, Where, chosen_environments, compare, relative
from envplane.desired import running_services
from envplane.errors import BadInput
from envplane.matrix.models import secret_looking
from envplane.render import templates
from envplane.render.local import local_variables

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.workspace import Workspace

_MAX_FILE = 1024 * 1024


def live_parity(ws: Workspace, envs: list[str] | None) -> ParityReport:
    matrix = ws.matrix
    chosen = chosen_environments(matrix, envs)
    created: list[str] = []
    missing: list[str] = []
    for env in chosen:
        record = ws.store.get_environment(env)
        (created if record is not None and record.status != "destroyed" else missing).append(env)
    if not created:
        raise BadInput(
            f"none of {', '.join(chosen)} is created: nothing runs to compare",
            hint="create them first (`envplane create ENV`), or compare the matrix "
            "(`envplane parity` without --live)",
        )
    settings = {env: live_settings(ws, matrix, env) for env in created}

    def where(env: str, setting: Setting) -> Where:
        return Where(relative(matrix, setting.file) if setting.file else "state store", None)

    report = compare(matrix, created, settings, where)
    report.source = "live"
    report.not_created = missing
    return report


def live_settings(ws: Workspace, matrix: Matrix, env: str) -> dict[str, Setting]:
    out: dict[str, Setting] = {}
    live = ws.store.get_live(env)
    out["release"] = Setting(live.release_id if live is not None else None)
    for name, running in sorted(running_services(ws, env, matrix).items()):
        out[f"services.{name}.version"] = Setting(running.version)
        out[f"services.{name}.color"] = Setting(running.color)
    out.update(_config_files(ws, matrix, env))
    return out


def _config_files(ws: Workspace, matrix: Matrix, env: str) -> dict[str, Setting]:
    root = ws.env_dir(env) / "config"
    record = ws.store.get_environment(env)
    ports = dict(record.ports) if record is not None else {}
    variables = local_variables(matrix, env, ws.env_dir(env), _with_zero(matrix, env, ports))
    expected: dict[str, str] = {}
    try:
        files = templates.template_files(matrix.templates_dir, matrix.environment(env).template)
        for cm in templates.render_config_maps(files, variables):
            expected.update({f"{cm.name}/{k}": v for k, v in cm.data.items()})
    except BadInput:
        pass  # the matrix's templates no longer render: every file is shown as it is
    standard = config_settings(matrix, env)
    own = matrix.variables_for(env)
    replace = sorted(
        (
            (str(v), f"{{{{{k}}}}}")
            for k, v in variables.items()
            if (k not in own or secret_looking(k)) and k != "ENVIRONMENT_NAME" and len(str(v)) >= 4
        ),
        key=lambda pair: -len(pair[0]),
    )
    out: dict[str, Setting] = {}
    for path in sorted(root.glob("*/*")) if root.is_dir() else []:
        if not path.is_file() or path.name.startswith("."):
            continue
        rel = f"{path.parent.name}/{path.name}"
        key = f"config.{path.parent.name}.{path.name}"
        text = _read(path)
        if text == expected.get(rel) and key in standard:
            value: Any = standard[key].value
        else:
            value = text
            for real, placeholder in replace:
                value = value.replace(real, placeholder)
        out[key] = Setting(value, None, str(path), None)
    return out


def _with_zero(matrix: Matrix, env: str, ports: dict[str, int]) -> dict[str, int]:
    from envplane.render.local import port_keys

    return {key: ports.get(key, 0) for key in port_keys(matrix, env)} | ports


def _read(path: Path) -> str:
    with path.open("rb") as f:
        data = f.read(_MAX_FILE + 1)
    if len(data) > _MAX_FILE:
        return f"(larger than {_MAX_FILE // 1024} KiB)"
    return data.decode("utf-8", errors="replace")
