"""An environment of the matrix, priced line by line from the price table.

What is priced is what the cloud renderer makes of the environment (render/cloud): an EKS
control plane per cluster, its node groups (instances and their root volumes), the RDS
PostgreSQL primary (Multi-AZ doubles instance and storage), the ElastiCache nodes, the NAT
gateways, the S3 bucket and the KMS key. Services run on the node groups, so they are in the
node groups' lines. Whatever the table has no price for is `Unpriced`, never $0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, get_args

from pydantic import ValidationError

from envplane.cost.model import (
    HOURS_PER_MONTH,
    TIMES,
    At,
    BlueGreenExtra,
    CostEstimate,
    CostLine,
    LineKind,
    Unpriced,
)
from envplane.cost.prices import PriceTable, RegionPrices, load_table
from envplane.errors import BadInput
from envplane.matrix import Matrix
from envplane.matrix.models import DeploymentStrategy, Environment, NodeGroup
from envplane.render.variables import is_on
from envplane.settings import resolve

_HOURLY_PLACES = Decimal("0.000001")
_AT_CHOICES: tuple[str, ...] = get_args(At)


def size_at(group: NodeGroup, at: At) -> int:
    return {"min": group.min_size, "desired": group.desired_size, "max": group.max_size}[at]


@dataclass
class _Lines:
    table: PriceTable
    lines: list[CostLine] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)

    def _region(self, resource: str, region: str) -> RegionPrices | None:
        prices = self.table.region(region)
        if prices is None:
            self._unpriced(resource, f"the price table has no region {region}")
        return prices

    def hourly(
        self,
        resource: str,
        region: str,
        kind: LineKind,
        quantity: int,
        unit: str,
        price: Decimal | None,
        what: str,
        detail: str | None = None,
    ) -> None:
        """A line priced per hour (instances, control planes, gateways)."""
        if price is None:
            self._unpriced(resource, f"no on-demand price for {what} in {region}")
            return
        hourly = Decimal(quantity) * price
        self._add(
            resource, region, kind, quantity, unit, price, detail, hourly * HOURS_PER_MONTH, hourly
        )

    def monthly(
        self,
        resource: str,
        region: str,
        kind: LineKind,
        quantity: int,
        unit: str,
        price: Decimal | None,
        what: str,
        detail: str,
    ) -> None:
        """A line priced per month (storage per GB-month)."""
        if price is None:
            self._unpriced(resource, f"no price for {what} in {region}")
            return
        monthly = Decimal(quantity) * price
        hourly = (monthly / HOURS_PER_MONTH).quantize(_HOURLY_PLACES)
        self._add(resource, region, kind, quantity, unit, price, detail, monthly, hourly)

    def _unpriced(self, resource: str, reason: str) -> None:
        self.unpriced.append(Unpriced(resource=resource, reason=reason))

    def _add(
        self,
        resource: str,
        region: str,
        kind: LineKind,
        quantity: int,
        unit: str,
        price: Decimal,
        detail: str | None,
        monthly: Decimal,
        hourly: Decimal,
    ) -> None:
        self.lines.append(
            CostLine(
                resource=resource,
                detail=detail or f"{quantity} {TIMES} {unit}",
                monthly=monthly,
                hourly=hourly,
                kind=kind,
                quantity=Decimal(quantity),
                unit=unit,
                unit_price=price,
                region=region,
            )
        )


def _clusters(out: _Lines, env: Environment, at: At) -> None:
    gb = out.table.assumptions.node_volume_gb
    for cluster in env.clusters:
        name = f"EKS control plane {cluster.name}"
        prices = out._region(name, cluster.region)
        if prices is None:
            for group in cluster.node_groups:
                out._region(f"node group {group.name}", cluster.region)
            continue
        out.hourly(
            name, cluster.region, "control_plane", 1, "EKS cluster",
            prices.eks_cluster_hour, "an EKS cluster", f"1 {TIMES} EKS cluster",
        )  # fmt: skip
        for group in cluster.node_groups:
            n = size_at(group, at)
            itype = group.instance_type
            res = f"node group {group.name}"
            out.hourly(
                res, cluster.region, "compute", n, itype, prices.ec2.get(itype),
                f"EC2 instance type {itype}",
            )  # fmt: skip
            out.monthly(
                f"{res} volumes", cluster.region, "storage", n * gb, "GB gp3",
                prices.ebs_gp3_gb_month, "EBS gp3 storage",
                f"{n} {TIMES} {gb} GB gp3 (assumed: the root volume of an EKS managed node)",
            )  # fmt: skip


def _databases(out: _Lines, env: Environment, region: str, prices: RegionPrices) -> None:
    if env.databases is None:
        return
    db = env.databases.primary
    if db is not None:
        copies = 2 if db.multi_az else 1
        az = "Multi-AZ (2 instances)" if db.multi_az else "Single-AZ"
        single = prices.rds_postgresql.get(db.instance_class)
        out.hourly(
            "PostgreSQL primary", region, "compute", copies, db.instance_class, single,
            f"RDS PostgreSQL {db.instance_class}", f"{db.instance_class}, {az}",
        )  # fmt: skip
        gb = out.table.assumptions.db_storage_gb
        out.monthly(
            "PostgreSQL storage", region, "storage", gb * copies, "GB RDS gp3",
            prices.rds_storage_gb_month, "RDS storage",
            f"{gb} GB gp3{f' {TIMES} 2 (Multi-AZ)' if db.multi_az else ''} (assumed: what envplane "
            "allocates; storage autoscaling may grow it)",
        )  # fmt: skip
    cache = env.databases.cache
    if cache is not None:
        out.hourly(
            "Redis cache", region, "compute", cache.num_cache_nodes, cache.node_type,
            prices.elasticache.get(cache.node_type), f"ElastiCache {cache.node_type}",
        )  # fmt: skip


def _network_and_storage(out: _Lines, env: Environment, region: str, p: RegionPrices) -> None:
    if env.networking is not None and env.networking.nat_gateways:
        n = env.networking.nat_gateways
        out.hourly(
            "NAT gateways", region, "network", n, "NAT gateway", p.nat_gateway_hour,
            "a NAT gateway", f"{n} {TIMES} NAT gateway (hourly; data processed not included)",
        )  # fmt: skip
    if env.storage is not None:
        gb = out.table.assumptions.s3_gb
        versions = "; versioning keeps old versions too" if is_on(env.storage.versioning) else ""
        out.monthly(
            "S3 bucket", region, "storage", gb, "GB S3 Standard", p.s3_standard_gb_month,
            "S3 Standard storage", f"{gb} GB S3 Standard (assumed: the matrix states no "
            f"size{versions})",
        )  # fmt: skip
    if env.security is not None and is_on(env.security.kms_encryption):
        out.monthly(
            "KMS key", region, "security", 1, "KMS key", p.kms_key_month, "a KMS key",
            f"1 {TIMES} customer managed key (requests not included)",
        )  # fmt: skip


BASIS_KEYS = frozenset({"regions", "clusters", "databases", "networking", "storage", "security"})


def cost_basis(env: Environment) -> dict[str, Any]:
    """The matrix values an estimate is made from, as JSON: what a plan records, so that the
    next plan prices what was last applied with today's table."""
    return env.model_dump(mode="json", include=set(BASIS_KEYS))


def environment_of(basis: Mapping[str, Any]) -> Environment | None:
    """A recorded basis read back; None when it no longer parses (an older model)."""
    try:
        return Environment.model_validate({"template": "recorded", **basis})
    except ValidationError:
        return None


def _blue_green(
    strategy: DeploymentStrategy | None, lines: list[CostLine]
) -> BlueGreenExtra | None:
    if strategy is None or strategy.primary != "blue_green":
        return None
    # The second color runs the services' pods once more; on a cluster the autoscaler may
    # need the node groups once more for it. The upper bound is shown, labelled as such.
    hourly = sum((x.hourly for x in lines if x.resource.startswith("node group ")
                  and x.kind == "compute"), Decimal(0))  # fmt: skip
    seconds = Decimal(str(strategy.scale_down_delay)) + Decimal(str(strategy.analysis.window))
    minutes = (seconds / 60).quantize(Decimal("0.1"))
    return BlueGreenExtra(
        hourly=hourly,
        minutes=minutes,
        per_deploy=(hourly * seconds / 3600).quantize(Decimal("0.0001")),
        detail=(
            "at most the node groups once more while both colors run (if the cluster "
            "autoscaler adds nodes for the second color), for at least the analysis window "
            "plus scale_down_delay"
        ),
    )


def estimate(
    matrix: Matrix,
    env_name: str,
    *,
    at: At = "desired",
    prices: PriceTable | None = None,
) -> CostEstimate:
    """What `env_name` costs per month at AWS on-demand list prices (730 hours a month).
    Without `prices`, the table imported under the matrix's ENVPLANE_HOME, else the shipped."""
    env = matrix.environment(env_name)
    table = prices if prices is not None else load_table(resolve(matrix.path).home)
    return estimate_environment(env_name, env, table, at=at, strategy=matrix.strategy_for(env_name))


def estimate_environment(
    env_name: str,
    env: Environment,
    table: PriceTable,
    *,
    at: At = "desired",
    strategy: DeploymentStrategy | None = None,
) -> CostEstimate:
    if at not in _AT_CHOICES:
        raise BadInput(f"--at must be one of {', '.join(_AT_CHOICES)}, not {at!r}")
    out = _Lines(table)
    _clusters(out, env, at)
    region = env.regions.primary
    has_regional = env.databases is not None or env.networking is not None or env.storage
    regional = out.table.region(region)
    if regional is not None:
        _databases(out, env, region, regional)
        _network_and_storage(out, env, region, regional)
    elif has_regional:
        out._region(f"resources in {region}", region)
    monthly = sum((x.monthly for x in out.lines), Decimal(0))
    hourly = sum((x.hourly for x in out.lines), Decimal(0))
    storage = sum((x.monthly for x in out.lines if x.kind == "storage"), Decimal(0))
    return CostEstimate(
        environment=env_name,
        at=at,
        monthly=monthly,
        hourly=hourly,
        storage_monthly=storage,
        lines=out.lines,
        unpriced=out.unpriced,
        table=table.info,
        blue_green=_blue_green(strategy, out.lines),
    )
