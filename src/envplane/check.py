"""`envplane check`: the matrix validates (on load) and every environment's templates render."""

from __future__ import annotations

from pathlib import Path

from envplane.matrix import Matrix
from envplane.render.local import desired_local, port_keys


def check_matrix(matrix: Matrix) -> str:
    """Render each environment with placeholder ports; raises MatrixError at the first problem."""
    lines = []
    for index, env in enumerate(matrix.environments):
        ports = {key: 20000 + index * 100 + n for n, key in enumerate(port_keys(matrix, env))}
        desired = desired_local(matrix, env, env_dir=Path("/nonexistent") / env, ports=ports)
        services = len([r for r in desired.resources if r.kind == "service"])
        lines.append(f"  {env}: {len(desired.resources)} resources, {services} service(s)")
    header = (
        f"{matrix.path}: OK, {len(matrix.environments)} environment(s), project {matrix.project!r}"
    )
    return "\n".join([header, *lines])
