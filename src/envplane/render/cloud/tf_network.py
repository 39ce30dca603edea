"""The VPC: subnets cut with cidrsubnet over the zones the matrix asks for, NAT gateways, routes.

EKS and RDS both refuse subnets in fewer than two availability zones, so when an environment
has a cluster or a database, its private subnets span at least two zones (and there are at
least two of them) whatever the matrix says; notes.py says so in the plan."""

from __future__ import annotations

from dataclasses import dataclass

from envplane.matrix import Environment, Networking
from envplane.matrix.cloudrules import SUBNET_NEWBITS
from envplane.render.cloud.tf import TfFile, ref

AZS = "data.aws_availability_zones.available.names"


@dataclass(frozen=True)
class Layout:
    """How many subnets of each kind, over how many zones, and how private ones route out."""

    public: int
    private: int
    zones: int
    private_zones: int
    nat: int

    @property
    def route_tables(self) -> int:
        return max(self.nat, 1)


def needs_two_zones(env: Environment) -> bool:
    dbs = env.databases
    return bool(env.clusters) or bool(dbs and (dbs.primary or dbs.cache))


def layout(net: Networking, env: Environment) -> Layout:
    two = needs_two_zones(env)
    return Layout(
        public=net.public_subnets,
        private=max(net.private_subnets, 2) if two else net.private_subnets,
        zones=net.availability_zones,
        private_zones=max(net.availability_zones, 2) if two else net.availability_zones,
        nat=net.nat_gateways,
    )


def network(f: TfFile, net: Networking, env: Environment, stack: str) -> Layout:
    lay = layout(net, env)
    f.data("aws_availability_zones", "available", {"state": "available"})
    vpc = f.resource(
        "aws_vpc",
        "main",
        {
            "cidr_block": net.vpc_cidr,
            "enable_dns_hostnames": True,
            "enable_dns_support": True,
            "tags": {"Name": stack},
        },
    )
    vpc_id = ref(f"{vpc}.id")
    if lay.public:
        _public(f, lay, vpc_id, stack)
    if lay.private:
        _private(f, lay, vpc_id, stack)
    return lay


def _subnet(lay_offset: int, zones: int, public: bool, count: int, stack: str) -> dict[str, object]:
    kind = "public" if public else "private"
    role = "kubernetes.io/role/elb" if public else "kubernetes.io/role/internal-elb"
    return {
        "count": count,
        "vpc_id": ref("aws_vpc.main.id"),
        "cidr_block": ref(
            f"cidrsubnet(aws_vpc.main.cidr_block, {SUBNET_NEWBITS}, {lay_offset} + count.index)"
        ),
        "availability_zone": ref(f"{AZS}[count.index % {zones}]"),
        "map_public_ip_on_launch": public,
        "tags": {"Name": f"{stack}-{kind}-${{count.index}}", role: "1"},
    }


def _public(f: TfFile, lay: Layout, vpc_id: str, stack: str) -> None:
    f.resource("aws_internet_gateway", "main", {"vpc_id": vpc_id, "tags": {"Name": stack}})
    f.resource("aws_subnet", "public", _subnet(0, lay.zones, True, lay.public, stack))
    f.resource("aws_route_table", "public", {"vpc_id": vpc_id, "tags": {"Name": f"{stack}-public"}})
    f.resource(
        "aws_route",
        "public_internet",
        {
            "route_table_id": ref("aws_route_table.public.id"),
            "destination_cidr_block": "0.0.0.0/0",
            "gateway_id": ref("aws_internet_gateway.main.id"),
        },
    )
    f.resource(
        "aws_route_table_association",
        "public",
        {
            "count": lay.public,
            "subnet_id": ref("aws_subnet.public[count.index].id"),
            "route_table_id": ref("aws_route_table.public.id"),
        },
    )
    if lay.nat:
        f.resource(
            "aws_eip",
            "nat",
            {"count": lay.nat, "domain": "vpc", "tags": {"Name": f"{stack}-nat-${{count.index}}"}},
        )
        f.resource(
            "aws_nat_gateway",
            "main",
            {
                "count": lay.nat,
                "allocation_id": ref("aws_eip.nat[count.index].id"),
                "subnet_id": ref("aws_subnet.public[count.index].id"),
                "tags": {"Name": f"{stack}-nat-${{count.index}}"},
                "depends_on": ["aws_internet_gateway.main"],
            },
        )


def _private(f: TfFile, lay: Layout, vpc_id: str, stack: str) -> None:
    f.resource(
        "aws_subnet", "private", _subnet(lay.public, lay.private_zones, False, lay.private, stack)
    )
    f.resource(
        "aws_route_table",
        "private",
        {
            "count": lay.route_tables,
            "vpc_id": vpc_id,
            "tags": {"Name": f"{stack}-private-${{count.index}}"},
        },
    )
    if lay.nat:
        f.resource(
            "aws_route",
            "private_nat",
            {
                "count": lay.nat,
                "route_table_id": ref("aws_route_table.private[count.index].id"),
                "destination_cidr_block": "0.0.0.0/0",
                "nat_gateway_id": ref("aws_nat_gateway.main[count.index].id"),
            },
        )
    # A private subnet routes through the NAT gateway of its own zone where there is one.
    table = f"(count.index % {lay.private_zones}) % {lay.route_tables}"
    f.resource(
        "aws_route_table_association",
        "private",
        {
            "count": lay.private,
            "subnet_id": ref("aws_subnet.private[count.index].id"),
            "route_table_id": ref(f"aws_route_table.private[{table}].id"),
        },
    )
