"""The small interface every target driver satisfies; the engine knows nothing else of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from envplane.errors import BadInput, MatrixError
from envplane.matrix.locate import first_of
from envplane.render.model import DesiredEnvironment, Resource

if TYPE_CHECKING:
    from envplane.matrix import Matrix

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
    # Resource kind -> a function returning a copy of another environment's data (a
    # DataTarget.prepare_copy token; it waits until the copy is ready) that `apply` creates
    # the resource from instead of empty. None from the function: create it empty.
    seeds: Mapping[str, Callable[[], Any]] = field(default_factory=dict)


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


@dataclass(frozen=True)
class Problem:
    """Something a target would refuse about a desired environment, found before anything is
    recorded or started (`Target.check`)."""

    message: str
    hint: str | None = None
    # Where the cause is written: a key path under `environments.<env>` in the matrix (the
    # caller locates it where the value is really written: a top-level service, a template).
    # None: not in the matrix (ENVPLANE_HOME, the run user, this machine).
    at: tuple[str | int, ...] | None = None


class Target(Protocol):
    name: str

    def check(self, desired: DesiredEnvironment, env_dir: Path) -> list[Problem]:
        """Everything this target requires of `desired`, and of the directory the environment
        would live in (`env_dir`, under ENVPLANE_HOME), that can be decided offline without
        changing anything: [] when applying it could start. `check`, `plan`, `create` and
        `update` all ask (through `refuse_problems`) before anything is recorded."""
        ...

    def preflight(self, desired: DesiredEnvironment) -> None:
        """Raise (ToolMissing) when this machine cannot apply `desired` at all - a program it
        needs is not installed - so nothing is recorded or started. (A plan does not ask:
        a cloud plan works on a machine without terraform.)"""
        ...

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

    def platform(self, ctx: EnvContext, desired: DesiredEnvironment) -> str | None:
        """What the environment runs on and its state, in one line for `info` (the cloud: the
        EKS cluster's status and Kubernetes version); None when there is nothing to say."""
        ...


@dataclass(frozen=True)
class DriftItem:
    """One field where the world differs from what envplane configured (`envplane drift`).
    Values are shown as they are, except a secret's, which is '***'."""

    resource: str  # a resource key ("redis/redis"), or a sub-object of it ("kubernetes/...")
    field: str  # what differs: "maxmemory", "env.LOG_LEVEL", "config/app/settings.yaml"
    expected: str
    actual: str
    changed_by: str | None = None  # who changed it, where the world says (a field manager)


@runtime_checkable
class DriftTarget(Protocol):
    """An optional capability of a Target: compare what runs with what it would apply."""

    def drift(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[DriftItem]:
        """Every field where what runs differs from `desired`, read-only; [] when none."""
        ...


@dataclass(frozen=True)
class Usage:
    """What an environment really uses on its machine, measured (`envplane cost`)."""

    processes: int
    cpu_seconds: float  # user + system time of the processes running now, since each started
    rss_bytes: int  # resident memory of those processes
    disk_bytes: int  # blocks allocated under the environment's directory


@runtime_checkable
class UsageTarget(Protocol):
    """An optional capability of a Target: measure what an environment uses where it runs."""

    def usage(self, ctx: EnvContext) -> Usage:
        """Read-only; an environment with nothing running measures zero processes."""
        ...


@dataclass(frozen=True)
class FrontDoor:
    """An environment's front door as a stand-in that answers there while it sleeps needs it."""

    port: int | None  # on 127.0.0.1; None: the environment has none (no nginx)
    run_dir: Path  # where the stand-in's pid file goes
    access_log: Path  # requests to the front door, one JSON line each (`{"t": epoch, ...}`)
    environ: Mapping[str, str]  # marks a process as the environment's: its destroy stops it


@runtime_checkable
class WakeTarget(Protocol):
    """An optional capability of a Target: stop every program of an environment, keeping its
    data and ports (sleep), and start them all again at once (wake)."""

    def front_door(self, ctx: EnvContext) -> FrontDoor:
        """Where the front door is; read-only, needs nothing running."""
        ...

    def stop_all(self, ctx: EnvContext) -> list[str]:
        """Stop every program that runs; the names of those that did. Data and ports stay."""
        ...

    def start_all(
        self, ctx: EnvContext, desired: DesiredEnvironment, handover: Callable[[], None]
    ) -> list[str]:
        """Start every stopped program of `desired` at once, the front door's last, right after
        `handover()` (which lets go of its port); wait until every resource observes healthy,
        concurrently. The names of the programs started; OperationFailed naming what is not
        healthy, PortInUse naming who holds a port."""
        ...


@dataclass(frozen=True)
class Orphaned:
    """Something a target made for an environment that no recorded environment owns now."""

    environment: str  # the name it is labelled or kept for
    kind: str  # "namespace", "helm-release", "terraform-state", ...
    name: str  # what the target calls it ("ns/release", a directory)
    where: str  # the API server, the directory
    description: str  # one line for people


@runtime_checkable
class OrphanTarget(Protocol):
    """An optional capability of a Target: find and remove what it made, labelled as
    envplane's, for environments that are not `live` (`gc --orphans`)."""

    def orphans(
        self, home: Path, live: set[str], clusters: list[tuple[str, str]]
    ) -> list[Orphaned]:
        """Read-only. `clusters`: (name, region) of every cluster the matrix names."""
        ...

    def remove_orphan(
        self, orphan: Orphaned, home: Path, clusters: list[tuple[str, str]]
    ) -> list[str]:
        """Remove it; what could not be removed ([] when it is gone)."""
        ...


class DeliveryTarget(Protocol):
    """How a target moves traffic between versions of a service; envplane.delivery decides
    the order (the strategies), the target does each move. A service Resource here is one
    color's: its spec names the color, the version and that color's replica ports."""

    def start_replica(self, ctx: EnvContext, resource: Resource, replica: int) -> None:
        """Run one replica of the spec and wait until its health check passes."""
        ...

    def stop_replica(self, ctx: EnvContext, name: str, color: str, replica: int) -> None: ...

    def replicas(self, ctx: EnvContext, name: str, color: str) -> list[int]:
        """The replicas of service `name` that exist on `color`."""
        ...

    def probe(
        self, ctx: EnvContext, resource: Resource, replica: int, path: str
    ) -> tuple[bool, str]: ...

    def route(self, ctx: EnvContext, resource: Resource) -> float:
        """Apply the proxy's spec; the seconds until the switch was complete."""
        ...

    def access_log(self, ctx: EnvContext) -> Path | None:
        """Where each request's upstream, status and time are logged (None: not kept)."""
        ...

    def migrate(self, ctx: EnvContext, resource: Resource) -> str:
        """Run the service's `migrate` command once; the tail of its output."""
        ...


def problem_errors(matrix: Matrix, env: str, problems: list[Problem]) -> list[BadInput]:
    """Each problem as the error it is: a MatrixError located where its value is written in
    the matrix, or a BadInput naming what on this machine is wrong."""
    return [
        matrix.error_at(("environments", env, *p.at), p.message, p.hint)
        if p.at is not None
        else BadInput(p.message, hint=p.hint)
        for p in problems
    ]


def first_error(errors: list[BadInput]) -> BadInput | None:
    """The one to report (the earliest in the matrix file, else the first of this machine's),
    its hint counting the others; None when there are none."""
    located = [e for e in errors if isinstance(e, MatrixError)]
    machine = list({str(e): e for e in errors if not isinstance(e, MatrixError)}.values())
    if not located and not machine:
        return None
    first = first_of(located) if located else machine[0]
    others = len(machine) - (0 if located else 1)
    if others:
        more = f"{others} more problem(s) with this machine or ENVPLANE_HOME"
        first.hint = f"{first.hint}; {more}" if first.hint else more
    return first


def refuse_problems(
    target: Target, matrix: Matrix, desired: DesiredEnvironment, env_dir: Path
) -> None:
    """Raise the first of what `target` would refuse about `desired` (exit 2), before anything
    is recorded: what create would refuse, check and plan refuse first."""
    error = first_error(problem_errors(matrix, desired.name, target.check(desired, env_dir)))
    if error is not None:
        raise error
