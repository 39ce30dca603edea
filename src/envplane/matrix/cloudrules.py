"""Cloud settings that no AWS account could honour, caught when the matrix loads.

The rules (docs/cloud.md, "Rules the matrix must follow"):
- Subnets are cut from `vpc_cidr` with SUBNET_NEWBITS more prefix bits each (a /16 VPC gives
  /20 subnets, room for 16); AWS's smallest subnet is a /28, so the VPC must be /24 or larger
  when it has subnets, and public + private subnets must fit in the room there is.
- At most MAX_SUBNETS_PER_AZ subnets of each kind per availability zone.
- A NAT gateway lives in a public subnet: nat_gateways <= public_subnets.
- Node groups take EC2 instance types (m5.large), RDS takes db.* classes, ElastiCache cache.*
  node types; each with a real size (micro ... 24xlarge, metal).
- An EKS managed node group needs max_size >= 1; a Redis replication group has at most
  MAX_CACHE_NODES nodes (one primary and five replicas).
Region names are checked by the models already.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from envplane.errors import MatrixError
from envplane.matrix.models import Environment
from envplane.matrix.yamlsafe import KeyPath

SUBNET_NEWBITS = 4
MAX_SUBNETS_PER_AZ = 2
SMALLEST_SUBNET_PREFIX = 28  # AWS refuses subnets smaller than /28
MAX_CACHE_NODES = 6

_SIZE = r"(nano|micro|small|medium|large|xlarge|[1-9][0-9]?xlarge|metal)"
# A family names a generation (a digit) and optional attributes: t3, m5d, r6g, c7gn, x2iedn.
_FAMILY = r"[a-z]+[1-9][a-z0-9-]*"
EC2_TYPE = re.compile(rf"^{_FAMILY}\.{_SIZE}$")
DB_CLASS = re.compile(rf"^db\.{_FAMILY}\.{_SIZE}$")
CACHE_TYPE = re.compile(rf"^cache\.{_FAMILY}\.{_SIZE}$")

ErrorAt = Callable[[KeyPath, str, str | None], MatrixError]


def subnet_prefix(vpc_cidr: str) -> int:
    return ipaddress.IPv4Network(vpc_cidr).prefixlen + SUBNET_NEWBITS


def check(environments: Mapping[str, Environment], error_at: ErrorAt) -> list[MatrixError]:
    """Every impossible cloud setting, each located at its key (Matrix.error_at's signature)."""
    errors: list[MatrixError] = []
    for name, env in environments.items():
        at: KeyPath = ("environments", name)
        errors += _networking(env, at, error_at)
        errors += _instance_types(env, at, error_at)
    return errors


def _networking(env: Environment, at: KeyPath, error_at: ErrorAt) -> list[MatrixError]:
    net = env.networking
    if net is None:
        return []
    where: KeyPath = (*at, "networking")
    errors: list[MatrixError] = []
    subnets = net.public_subnets + net.private_subnets
    prefix = subnet_prefix(net.vpc_cidr)
    if subnets and prefix > SMALLEST_SUBNET_PREFIX:
        errors.append(
            error_at(
                (*where, "vpc_cidr"),
                f"{net.vpc_cidr} is too small: its subnets would be /{prefix} "
                f"(the VPC prefix + {SUBNET_NEWBITS}), and AWS's smallest subnet is "
                f"/{SMALLEST_SUBNET_PREFIX}",
                f"use a /{SMALLEST_SUBNET_PREFIX - SUBNET_NEWBITS} or larger block",
            )
        )
    room = 2**SUBNET_NEWBITS
    if subnets > room:
        errors.append(
            error_at(
                (*where, "private_subnets" if net.private_subnets else "public_subnets"),
                f"{net.public_subnets} public + {net.private_subnets} private subnets of "
                f"/{prefix} do not fit in {net.vpc_cidr} (room for {room})",
                f"use at most {room} subnets in all",
            )
        )
    limit = net.availability_zones * MAX_SUBNETS_PER_AZ
    for kind in ("public_subnets", "private_subnets"):
        count = getattr(net, kind)
        if count > limit:
            errors.append(
                error_at(
                    (*where, kind),
                    f"{count} {kind.replace('_', ' ')} over {net.availability_zones} availability "
                    f"zone(s) is more than {MAX_SUBNETS_PER_AZ} per zone",
                    f"use at most {limit}, or more availability_zones",
                )
            )
    if net.nat_gateways > net.public_subnets:
        errors.append(
            error_at(
                (*where, "nat_gateways"),
                f"{net.nat_gateways} NAT gateways need as many public subnets; "
                f"public_subnets is {net.public_subnets}",
                "a NAT gateway lives in a public subnet: lower nat_gateways or add public subnets",
            )
        )
    return errors


def _instance_types(env: Environment, at: KeyPath, error_at: ErrorAt) -> list[MatrixError]:
    errors: list[MatrixError] = []
    for c, cluster in enumerate(env.clusters):
        for g, group in enumerate(cluster.node_groups):
            where: KeyPath = (*at, "clusters", c, "node_groups", g)
            kind = group.instance_type.split(".", 1)[0]
            if kind in ("db", "cache") or not EC2_TYPE.fullmatch(group.instance_type):
                what = {"db": "an RDS instance class", "cache": "an ElastiCache node type"}
                errors.append(
                    error_at(
                        (*where, "instance_type"),
                        f"{group.instance_type!r} is {what.get(kind, 'not an EC2 instance type')}",
                        "node groups take EC2 instance types like m5.large or t3.medium",
                    )
                )
            if group.max_size < 1:
                errors.append(
                    error_at(
                        (*where, "max_size"),
                        "an EKS managed node group needs max_size of at least 1",
                        None,
                    )
                )
    primary = env.databases.primary if env.databases else None
    if primary is not None and not DB_CLASS.fullmatch(primary.instance_class):
        errors.append(
            error_at(
                (*at, "databases", "primary", "instance_class"),
                f"{primary.instance_class!r} is not an RDS instance class",
                "RDS takes classes like db.t3.medium or db.r5.large",
            )
        )
    cache = env.databases.cache if env.databases else None
    if cache is not None:
        if not CACHE_TYPE.fullmatch(cache.node_type):
            errors.append(
                error_at(
                    (*at, "databases", "cache", "node_type"),
                    f"{cache.node_type!r} is not an ElastiCache node type",
                    "ElastiCache takes node types like cache.t3.micro or cache.r6g.large",
                )
            )
        if cache.num_cache_nodes > MAX_CACHE_NODES:
            errors.append(
                error_at(
                    (*at, "databases", "cache", "num_cache_nodes"),
                    f"a Redis replication group has at most {MAX_CACHE_NODES} nodes "
                    f"(one primary and {MAX_CACHE_NODES - 1} replicas), not "
                    f"{cache.num_cache_nodes}",
                    None,
                )
            )
    return errors
