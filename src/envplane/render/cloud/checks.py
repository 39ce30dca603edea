"""What the cloud target needs of an environment beyond what the matrix rules check.

These are target-specific (the local target runs services without images, and without a VPC),
so they run when an environment is rendered for the cloud, each located in the matrix."""

from __future__ import annotations

import re

from envplane.errors import MatrixError
from envplane.matrix import Matrix
from envplane.matrix.cloudrules import SMALLEST_SUBNET_PREFIX, subnet_prefix
from envplane.matrix.locate import first_of
from envplane.render.cloud.names import stack_name
from envplane.render.cloud.tf_network import needs_two_zones
from envplane.render.cloud.tracks import INGRESS_CLASS_VARIABLE, canary_split

# RDS, ElastiCache and S3 names: letters, digits and single hyphens, starting with a letter.
AWS_STACK = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def check_cloud(matrix: Matrix, env: str) -> None:
    """Raises a MatrixError (the first of them, counting the others) or returns."""
    e = matrix.environment(env)
    at = ("environments", env)
    errors: list[MatrixError] = []
    stack = stack_name(matrix.project, env)
    if not AWS_STACK.fullmatch(stack):
        errors.append(
            matrix.error_at(
                at,
                f"{stack!r} cannot name AWS resources (RDS, ElastiCache, S3 refuse '--' and a "
                "trailing '-')",
                "rename the environment or the project",
            )
        )
    services = matrix.services_for(env)
    for name, service in services.items():
        if not service.image:
            errors.append(
                matrix.error_at(
                    (*at, "services", name),
                    f"service {name!r} has no `image`: the cloud target runs containers",
                    "add `image: registry/name:tag` to the service",
                )
            )
    if services and not e.clusters:
        errors.append(
            matrix.error_at(
                at,
                "services need a cluster on the cloud target, and `clusters` is empty",
                "add a cluster with a node group",
            )
        )
    if needs_two_zones(e) and e.networking is None:
        errors.append(
            matrix.error_at(
                at,
                "EKS clusters, RDS and ElastiCache live in a VPC: `networking` is missing",
                "add networking: vpc_cidr, availability_zones, public/private subnets",
            )
        )
    if e.networking is not None and needs_two_zones(e):
        prefix = subnet_prefix(e.networking.vpc_cidr)
        if prefix > SMALLEST_SUBNET_PREFIX:
            errors.append(
                matrix.error_at(
                    (*at, "networking", "vpc_cidr"),
                    f"{e.networking.vpc_cidr} is too small for the private subnets EKS/RDS "
                    f"need (/{prefix}; AWS's smallest subnet is /{SMALLEST_SUBNET_PREFIX})",
                    "use a /24 or larger block",
                )
            )
    for i, cluster in enumerate(e.clusters):
        if cluster.region != e.regions.primary:
            errors.append(
                matrix.error_at(
                    (*at, "clusters", i, "region"),
                    f"cluster {cluster.name!r} is in {cluster.region}; the cloud target builds "
                    f"clusters in the primary region's VPC ({e.regions.primary})",
                    "move the cluster to the primary region",
                )
            )
    errors += _canary_weights(matrix, env)
    if errors:
        raise first_of(errors)


def _canary_weights(matrix: Matrix, env: str) -> list[MatrixError]:
    """Without an Ingress a canary's weight is its share of the replicas: a primary canary
    whose step the replicas cannot come near (no canary replica, or no stable one left) is
    refused where the step is written. (An alternative is checked when a deploy asks for it.)"""
    strategy = matrix.strategy_for(env)
    if strategy.primary != "canary" or matrix.variables_for(env).get(INGRESS_CLASS_VARIABLE):
        return []
    errors: list[MatrixError] = []
    for name, service in matrix.services_for(env).items():
        for i, step in enumerate(strategy.steps):
            if step.weight is None or canary_split(step.weight, service.replicas) is not None:
                continue
            errors.append(
                matrix.error_at(
                    ("deployment_strategies", env, "steps", i, "weight"),
                    f"canary weight {step.weight} cannot be approximated with the "
                    f"{service.replicas} replica(s) of {name!r}: without an Ingress a weight "
                    "is the canary's share of the replicas",
                    "give the environment an Ingress (variable INGRESS_CLASS) for exact "
                    "weights, or use weights the replicas can express (e.g. 50 with 2)",
                )
            )
            break
    return errors
