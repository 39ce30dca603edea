"""`envplane check`: the matrix validates (on load), every environment's templates render, and
the target each environment is created on by default (local) finds nothing it would refuse."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from envplane.errors import BadInput
from envplane.matrix import Matrix, policies
from envplane.matrix.models import secret_looking
from envplane.render.local import desired_local, port_keys
from envplane.settings import resolve
from envplane.targets.base import Problem, first_error, problem_errors
from envplane.targets.registry import spec

# `create` and `plan` use the local target unless told otherwise (`--target`).
DEFAULT_TARGET = "local"


@dataclass(frozen=True)
class CheckedEnvironment:
    name: str
    resources: int
    """What the local target would run of it (with placeholder ports)."""
    services: int


@dataclass(frozen=True)
class CheckReport:
    """A matrix that loaded, whose every environment rendered, and of which the local target
    would refuse nothing."""

    matrix: str
    project: str
    environments: list[CheckedEnvironment] = field(default_factory=list)

    def text(self) -> str:
        header = (
            f"{self.matrix}: OK, {len(self.environments)} environment(s), project {self.project!r}"
        )
        lines = [
            f"  {e.name}: {e.resources} resources, {e.services} service(s)"
            for e in self.environments
        ]
        return "\n".join([header, *lines])


def check_matrix(matrix: Matrix, *, home: Path | None = None) -> CheckReport:
    """Render each environment with placeholder ports and ask the local target what it would
    refuse of it and of ENVPLANE_HOME (`home`; by default the one `create` would use, from the
    environment as the CLI reads it). Raises the first problem (a MatrixError located where
    the value is written, or a BadInput naming the directory), counting the others."""
    settings = resolve(matrix.path)
    if home is not None:
        settings = replace(settings, home=home)
    target = spec(DEFAULT_TARGET).driver()
    errors: list[BadInput] = []
    checked = []
    for env in matrix.environments:
        # Ports only need to be distinct within one environment; these are never bound.
        ports = {key: 20000 + n for n, key in enumerate(port_keys(matrix, env))}
        env_dir = settings.env_dir(env)
        desired = desired_local(matrix, env, env_dir=env_dir, ports=ports)
        errors += problem_errors(matrix, env, target.check(desired, env_dir))
        errors += problem_errors(matrix, env, plain_secrets(matrix, env))
        services = len([r for r in desired.resources if r.kind == "service"])
        checked.append(CheckedEnvironment(env, len(desired.resources), services))
    error = first_error(errors)
    if error is not None:
        raise error
    policies.refuse(matrix)  # exit 3, every violation of every environment located
    return CheckReport(str(matrix.path), matrix.project, checked)


def plain_secrets(matrix: Matrix, env: str) -> list[Problem]:
    """A service's env value written in plain text under a key that names a secret (API_KEY,
    DATABASE_PASSWORD, ...: `secret_looking`): it would be stored and shown in clear. An empty
    value is no secret."""
    return [
        Problem(
            f"{key} names a secret: a plain value here is stored and shown in clear "
            "(plans, the journal, the state store)",
            f"write `{key}: {{secret: NAME}}`: the environment's secret NAME, generated once, "
            f"or set with `envplane secret set {env} NAME` (the value read from stdin)",
            at=("services", name, "env", key),
        )
        for name, service in matrix.services_for(env).items()
        for key, value in service.env.items()
        if isinstance(value, str) and value and secret_looking(key)
    ]
