"""Which rollout moves a release on an environment's target: processes behind nginx
(rollout.Rollout) or Kubernetes objects (cloud_rollout.CloudRollout), one public surface; and
what stops a color blue-green kept, on either."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from envplane.delivery.rollout import Rollout
from envplane.targets.registry import get_delivery, rollout_model

if TYPE_CHECKING:
    from envplane.delivery.cloud_rollout import CloudRollout
    from envplane.delivery.documents import DeployPlan
    from envplane.matrix.models import DeploymentStrategy
    from envplane.state.records import EnvironmentRecord
    from envplane.targets.base import EnvContext
    from envplane.workspace import Workspace

WORKLOADS = "kubernetes/workloads"


class KeptColors(Protocol):
    """What stopping a kept color needs of a target's moves."""

    def replicas(self, ctx: EnvContext, name: str, color: str) -> list[int]: ...

    def stop_replica(self, ctx: EnvContext, name: str, color: str, replica: int) -> None: ...


def new_rollout(
    ws: Workspace,
    plan: DeployPlan,
    op_id: str,
    *,
    strategy: DeploymentStrategy,
    first_index: int = 0,
    rollout_id: str | None = None,
) -> Rollout | CloudRollout:
    record = _record(ws, plan.environment)
    if rollout_model(record.target or "local") == "kubernetes":
        # Imported here: the Kubernetes client loads only for cloud environments.
        from envplane.delivery.cloud_rollout import CloudRollout
        from envplane.targets.cloud.delivery import CloudDelivery

        return CloudRollout(
            ws,
            plan,
            op_id,
            delivery=CloudDelivery(),
            strategy=strategy,
            first_index=first_index,
            rollout_id=rollout_id,
        )
    return Rollout(
        ws,
        plan,
        op_id,
        delivery=get_delivery(record.target or "local"),
        strategy=strategy,
        first_index=first_index,
        rollout_id=rollout_id,
    )


def kept_colors(ws: Workspace, env: str) -> KeptColors:
    """The moves that stop a kept color of `env`: the cloud's attached to the environment's
    recorded workloads (their namespace and cluster)."""
    record = _record(ws, env)
    if rollout_model(record.target or "local") == "kubernetes":
        from envplane.targets.cloud.delivery import CloudDelivery

        cloud = CloudDelivery()
        workloads = ws.store.resources(env).get(WORKLOADS)
        cloud.attach(dict(workloads.spec) if workloads is not None else {})
        return cloud
    return get_delivery(record.target or "local")


def _record(ws: Workspace, env: str) -> EnvironmentRecord:
    record = ws.store.get_environment(env)
    assert record is not None, f"{env} is checked to exist before a rollout"
    return record
