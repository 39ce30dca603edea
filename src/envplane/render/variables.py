"""Template variables shared by every target: names, namespace, release version, toggles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envplane.matrix import Matrix
from envplane.names import sql_ident


def is_on(value: Any) -> bool:
    """The seed spells switches as enabled/basic/strict/...; only disabled/false/none are off."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).lower() not in ("disabled", "false", "off", "no", "none", "")


def project_root(matrix: Matrix) -> Path:
    """`config/environment-matrix.yaml` lives in a project whose root is above `config/`."""
    parent = Path(matrix.path).absolute().parent
    return parent.parent if parent.name == "config" else parent


def namespace(project: str, env: str) -> str:
    return f"{project}-{env}"


def database_name(project: str, env: str) -> str:
    return sql_ident(f"{project}_{env}")


def env_var_name(service: str) -> str:
    return service.upper().replace("-", "_")


def base_variables(matrix: Matrix, env: str) -> dict[str, Any]:
    project = matrix.project
    variables: dict[str, Any] = {
        "ENVIRONMENT_NAME": env,
        "PROJECT": project,
        "NAMESPACE": namespace(project, env),
        "VERSION": "unversioned",
        "POSTGRES_DB": database_name(project, env),
    }
    variables.update(matrix.variables_for(env))
    return variables
