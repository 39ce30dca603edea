"""The terraform/infrastructure resource: write the files, init, plan, apply the saved plan,
then check the EKS cluster is ACTIVE (the seed's validation). Destroy, then prove the state
is empty."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.base import EnvContext, Observed
from envplane.targets.cloud import aws
from envplane.targets.cloud.terraform import Terraform


def workdir(ctx: EnvContext) -> Path:
    return ctx.env_dir / "terraform"


def ready(ctx: EnvContext, spec: Mapping[str, Any]) -> Terraform:
    """A working directory holding the spec's files, initialised on its backend."""
    tf = Terraform(workdir(ctx), ctx.progress)
    tf.write(spec["files"])
    tf.init(spec["backend"])
    return tf


def outputs(ctx: EnvContext) -> dict[str, Any]:
    """`terraform output` of the environment; needs an initialised working directory."""
    tf = Terraform(workdir(ctx), ctx.progress)
    if not tf.initialised:
        raise OperationFailed(
            f"the Terraform working directory {tf.workdir} is not initialised",
            hint="its infrastructure step runs init: `envplane resume` or `envplane update`",
        )
    return tf.outputs()


def _check_cluster(spec: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    name = values.get("cluster_name")
    if not name:
        return ""
    found = aws.eks_cluster(str(spec["region"]), str(name))
    if found is None:
        return f"EKS cluster {name} not found"
    if found.status != "ACTIVE":
        return f"EKS cluster {name} is {found.status}"
    return ""


def apply(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    tf = ready(ctx, spec)
    planned = tf.plan()
    if planned.changes:
        tf.apply_plan()
    else:
        ctx.progress("infrastructure matches the Terraform files")
    problem = _check_cluster(spec, tf.outputs())
    if problem:
        raise OperationFailed(f"after terraform apply: {problem}")


def observe(ctx: EnvContext, spec: Mapping[str, Any]) -> Observed:
    tf = Terraform(workdir(ctx), ctx.progress)
    if not tf.initialised:
        return Observed(False, False, "no Terraform working directory here")
    values = tf.outputs()
    if not values:
        return Observed(False, False, "Terraform state has no outputs (nothing applied)")
    problem = _check_cluster(spec, values)
    return Observed(True, not problem, problem, info={"outputs": sorted(values)})


def delete(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    if "files" not in spec:
        raise OperationFailed("the recorded infrastructure has no Terraform files to destroy")
    tf = ready(ctx, spec)
    tf.destroy()
    left = tf.state_list()
    if left:
        raise OperationFailed(
            f"terraform destroy left {len(left)} resource(s) in the state: {', '.join(left[:5])}",
            hint="see `terraform state list` in " + str(tf.workdir),
        )
