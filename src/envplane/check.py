"""`envplane check`: the matrix validates (on load) and every environment's templates render."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from envplane.matrix import Matrix
from envplane.render.local import desired_local, port_keys


@dataclass(frozen=True)
class CheckedEnvironment:
    name: str
    resources: int
    """What the local target would run of it (with placeholder ports)."""
    services: int


@dataclass(frozen=True)
class CheckReport:
    """A matrix that loaded and whose every environment rendered."""

    matrix: str
    project: str
    environments: list[CheckedEnvironment] = field(default_factory=list)

    def text(self) -> str:
        header = (
            f"{self.matrix}: OK, {len(self.environments)} environment(s), "
            f"project {self.project!r}"
        )
        lines = [
            f"  {e.name}: {e.resources} resources, {e.services} service(s)"
            for e in self.environments
        ]
        return "\n".join([header, *lines])


def check_matrix(matrix: Matrix) -> CheckReport:
    """Render each environment with placeholder ports; raises MatrixError at the first problem."""
    checked = []
    for index, env in enumerate(matrix.environments):
        ports = {key: 20000 + index * 100 + n for n, key in enumerate(port_keys(matrix, env))}
        desired = desired_local(matrix, env, env_dir=Path("/nonexistent") / env, ports=ports)
        services = len([r for r in desired.resources if r.kind == "service"])
        checked.append(CheckedEnvironment(env, len(desired.resources), services))
    return CheckReport(str(matrix.path), matrix.project, checked)
