"""The small interface every target driver satisfies; the engine knows nothing else of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from envplane.render.model import DesiredEnvironment, Resource

Action = Literal["create", "update"]


@dataclass(frozen=True)
class EnvContext:
    """What a driver may know about the environment it works on."""

    name: str
    project: str
    env_dir: Path  # the environment's own directory under ENVPLANE_HOME
    ports: Mapping[str, int]  # allocation key -> port, recorded in the state store
    secret: Callable[[str], str]  # secret name -> clear value, decrypted on demand
    matrix_dir: Path  # where relative service commands and templates are resolved
    progress: Callable[[str], None] = field(default=lambda _msg: None)


@dataclass(frozen=True)
class Observed:
    exists: bool
    healthy: bool
    detail: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Endpoint:
    name: str  # "frontend", "postgres", ...
    url: str  # with the password masked as '***'
    secret_url: str | None = None  # with the password, shown only under --show-secrets


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    ready: int
    desired: int

    @property
    def healthy(self) -> bool:
        return self.ready == self.desired


class Target(Protocol):
    name: str

    def observe(self, ctx: EnvContext, resource: Resource) -> Observed:
        """Read-only look at one resource."""
        ...

    def apply(self, ctx: EnvContext, action: Action, resource: Resource) -> None:
        """Make the resource match its spec; idempotent; returns once verified healthy."""
        ...

    def delete(self, ctx: EnvContext, resource: Resource) -> None:
        """Remove the resource and everything it owns; idempotent."""
        ...

    def teardown(self, ctx: EnvContext) -> None:
        """After every resource was deleted: remove what remains of the environment (its
        directory, its supervisor); idempotent, and fine when nothing exists."""
        ...

    def leftovers(self, ctx: EnvContext, recorded_ports: Mapping[str, int]) -> list[str]:
        """After destroy: every process, port, directory still there, one line each."""
        ...

    def endpoints(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[Endpoint]: ...

    def services(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[ServiceStatus]: ...
