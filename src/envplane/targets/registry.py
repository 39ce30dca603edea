"""Every target envplane knows, listed explicitly, with all that differs between them.

One `TargetSpec` per target: its resource kinds in creation order, its drivers, how an
environment is rendered for it, what it cannot honour of the matrix, how it is validated and
whether it renders to files. Code above the drivers asks `spec(name)` and never compares a
target's name.

Importing this module is cheap: each driver, renderer and validator module is imported inside
the function that needs it, so `envplane --help` loads none of them and boto3/kubernetes load
only for the cloud target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from envplane.errors import BadInput, UnknownTarget

if TYPE_CHECKING:
    from envplane.matrix import Matrix
    from envplane.render.model import DesiredEnvironment, Running
    from envplane.targets.base import DeliveryTarget, Target
    from envplane.targets.checks import Validator
    from envplane.targets.datacaps import DataTarget


@dataclass(frozen=True)
class Rendered:
    """An environment rendered for a target, with the ports it uses: `ports` all of them (the
    recorded ones kept), `new_ports` those allocated by this rendering (to be recorded)."""

    desired: DesiredEnvironment
    ports: dict[str, int]
    new_ports: dict[str, int]


class Renderer(Protocol):
    def __call__(
        self,
        matrix: Matrix,
        env: str,
        *,
        template: str | None,
        ports: Mapping[str, int],
        held_ports: Callable[[], Iterable[int]],
        env_dir: Path,
        running: Mapping[str, Running] | None = None,
    ) -> Rendered:
        """Render `env`: `ports` are the ports recorded for it, `held_ports()` those other
        environments hold (asked only when a port must be allocated), `env_dir` its own
        directory, `running` what version each service runs on which color (a release
        deployed; the matrix's initial versions on blue for those it does not name)."""
        ...


@dataclass(frozen=True)
class TargetSpec:
    name: str
    label: str  # one line, for help text
    kinds: tuple[str, ...]  # resource kinds in creation order; deletion runs in reverse
    driver: Callable[[], Target]
    data_driver: Callable[[], DataTarget | None]  # None: no backup, restore, clone or sync
    render: Renderer
    notes: Callable[[Matrix, str], list[str]]  # what the target cannot honour of the matrix
    validator: Callable[[], Validator | None]  # None: the target cannot be validated yet
    write_files: Callable[[DesiredEnvironment, Path], list[Path]] | None = None
    # How releases reach its environments: "processes" (replicas behind nginx, moved through
    # `delivery`), "kubernetes" (Deployments and Services through the API); None: not yet.
    rollout_model: Literal["processes", "kubernetes"] | None = None
    delivery: Callable[[], DeliveryTarget | None] = lambda: None  # the processes' moves


# --- local ---------------------------------------------------------------------------------


def _local_driver() -> Target:
    from envplane.targets.local import LocalTarget

    return LocalTarget()


def _local_data() -> DataTarget:
    from envplane.targets.local.data import LocalData

    return LocalData()


def _local_delivery() -> DeliveryTarget:
    from envplane.targets.local.delivery import LocalDelivery

    return LocalDelivery()


def _local_render(
    matrix: Matrix,
    env: str,
    *,
    template: str | None,
    ports: Mapping[str, int],
    held_ports: Callable[[], Iterable[int]],
    env_dir: Path,
    running: Mapping[str, Running] | None = None,
) -> Rendered:
    """Every port the environment needs: recorded ones kept, missing ones allocated now (free
    loopback ports no other environment holds)."""
    from envplane.ports import allocate
    from envplane.render.local import desired_local, port_keys

    keys = port_keys(matrix, env)
    missing = [k for k in keys if k not in ports]
    new_ports = allocate(missing, set(held_ports()) | set(ports.values())) if missing else {}
    all_ports = {k: v for k, v in {**ports, **new_ports}.items() if k in keys}
    desired = desired_local(
        matrix, env, env_dir=env_dir, ports=all_ports, template=template, running=running
    )
    return Rendered(desired=desired, ports=all_ports, new_ports=new_ports)


def _local_notes(matrix: Matrix, env: str) -> list[str]:
    from envplane.render.notes import local_notes

    return local_notes(matrix, env)


def _local_validator() -> Validator:
    from envplane.targets.local.validation import LocalValidator

    return LocalValidator()


# --- cloud ---------------------------------------------------------------------------------


def _cloud_driver() -> Target:
    from envplane.targets.cloud import CloudTarget

    return CloudTarget()


def _cloud_data() -> DataTarget:
    from envplane.targets.cloud import CloudData

    return CloudData()


def _cloud_render(
    matrix: Matrix,
    env: str,
    *,
    template: str | None,
    ports: Mapping[str, int],
    held_ports: Callable[[], Iterable[int]],
    env_dir: Path,
    running: Mapping[str, Running] | None = None,
) -> Rendered:
    """Nothing is allocated on this machine: the endpoints come from Terraform outputs."""
    from envplane.render.cloud import desired_cloud

    # `running`: the versions and colors a release put there (the matrix's before one).
    desired = desired_cloud(matrix, env, template=template, running=running)
    return Rendered(desired=desired, ports={}, new_ports={})


def _cloud_notes(matrix: Matrix, env: str) -> list[str]:
    from envplane.render.cloud import desired_cloud

    return list(desired_cloud(matrix, env).notes)


def _cloud_validator() -> Validator:
    from envplane.targets.cloud import CloudValidator

    return CloudValidator()


def _cloud_write(desired: DesiredEnvironment, out_dir: Path) -> list[Path]:
    from envplane.render.cloud import write_rendered

    return write_rendered(desired, out_dir)


# --- the registry --------------------------------------------------------------------------

SPECS: tuple[TargetSpec, ...] = (
    TargetSpec(
        name="local",
        label="processes on this machine, under one supervisor per environment",
        kinds=(
            "supervisor",
            "storage",
            "postgres",
            "redis",
            "config",
            "service",
            "proxy",
            "monitoring",
        ),
        driver=_local_driver,
        data_driver=_local_data,
        render=_local_render,
        notes=_local_notes,
        validator=_local_validator,
        rollout_model="processes",
        delivery=_local_delivery,
    ),
    TargetSpec(
        name="cloud",
        label="AWS through Terraform, Kubernetes and Helm",
        # infrastructure, then the workloads on it, then the monitoring chart
        kinds=("terraform", "kubernetes", "helm"),
        driver=_cloud_driver,
        data_driver=_cloud_data,
        render=_cloud_render,
        notes=_cloud_notes,
        validator=_cloud_validator,
        write_files=_cloud_write,
        rollout_model="kubernetes",
    ),
)

TARGETS = tuple(s.name for s in SPECS)


def spec(name: str) -> TargetSpec:
    """The target called `name`; UnknownTarget (bad input) when there is none."""
    for entry in SPECS:
        if entry.name == name:
            return entry
    raise UnknownTarget(name, TARGETS)


def get_target(name: str) -> Target:
    return spec(name).driver()


def get_data_target(name: str) -> DataTarget:
    """The data operations (backup, restore, clone, sync) of a target."""
    data = spec(name).data_driver()
    if data is None:
        raise BadInput(f"target {name!r} has no data operations in this version")
    return data


def rollout_model(name: str) -> Literal["processes", "kubernetes"]:
    """How releases reach environments of a target; bad input where they cannot yet."""
    model = spec(name).rollout_model
    if model is None:
        raise BadInput(
            f"releases cannot be deployed to {name} environments in this version",
            hint="see docs/delivery.md",
        )
    return model


def get_delivery(name: str) -> DeliveryTarget:
    """The moves of a target whose releases run as processes (`rollout_model` "processes")."""
    delivery = spec(name).delivery()
    if delivery is None:
        raise BadInput(
            f"{name} environments take releases through their own rollout, not processes",
            hint="see docs/delivery.md",
        )
    return delivery


def get_validator(name: str) -> Validator:
    """The validator of a target; bad input when the target has none yet."""
    validator = spec(name).validator()
    if validator is None:
        raise BadInput(f"validation of {name} environments is not available in this version")
    return validator
