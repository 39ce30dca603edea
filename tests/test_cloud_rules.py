"""Cloud settings no AWS account could honour fail when the matrix loads, located at the key."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix import load_matrix, load_matrix_text
from tests.conftest import ENVPLANE, REPO

MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
STAGING_NET = """      vpc_cidr: 10.1.0.0/16
      availability_zones: 2
      public_subnets: 2
      private_subnets: 2
      nat_gateways: 1
"""


def load_edited(old: str, new: str) -> MatrixError:
    text = MATRIX.read_text()
    assert text.count(old) >= 1, old
    text = text.replace(old, new, 1)
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(text, str(MATRIX))
    return caught.value


def line_of(needle: str, text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_seed_matrix_passes_every_rule() -> None:
    load_matrix(MATRIX)


def test_subnets_that_do_not_fit_in_the_vpc() -> None:
    err = load_edited(
        STAGING_NET,
        STAGING_NET.replace("availability_zones: 2", "availability_zones: 6")
        .replace("public_subnets: 2", "public_subnets: 9")
        .replace("private_subnets: 2", "private_subnets: 9"),
    )
    assert err.key == "environments.staging.networking.private_subnets"
    assert "do not fit in 10.1.0.0/16 (room for 16)" in err.detail
    assert err.line == line_of("vpc_cidr: 10.1.0.0/16", MATRIX.read_text()) + 3


def test_a_vpc_too_small_for_any_subnet() -> None:
    err = load_edited("vpc_cidr: 10.1.0.0/16", "vpc_cidr: 10.1.0.0/26")
    assert err.key == "environments.staging.networking.vpc_cidr"
    assert "/30" in err.detail and "/28" in err.detail
    assert err.hint and "/24 or larger" in err.hint


def test_more_subnets_of_a_kind_than_the_zones_allow() -> None:
    err = load_edited(STAGING_NET, STAGING_NET.replace("public_subnets: 2", "public_subnets: 5"))
    assert err.key == "environments.staging.networking.public_subnets"
    assert "more than 2 per zone" in err.detail


def test_more_nat_gateways_than_public_subnets() -> None:
    text = MATRIX.read_text()
    text = text.replace(STAGING_NET, STAGING_NET.replace("nat_gateways: 1", "nat_gateways: 4"), 1)
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(text, str(MATRIX))
    err = caught.value
    assert err.key == "environments.staging.networking.nat_gateways"
    assert err.line == line_of("nat_gateways: 4", text)
    assert "4 NAT gateways need as many public subnets" in err.detail
    assert str(err).startswith(f"{MATRIX}:{err.line}: environments.staging.networking")


@pytest.mark.parametrize(
    ("old", "new", "key", "words"),
    [
        (
            "instance_type: m5.large",
            "instance_type: cache.t3",
            "environments.staging.clusters[0].node_groups[0].instance_type",
            "is an ElastiCache node type",
        ),
        (
            "instance_type: m5.large",
            "instance_type: m5.huge",
            "environments.staging.clusters[0].node_groups[0].instance_type",
            "not an EC2 instance type",
        ),
        (
            "instance_type: m5.large",
            "instance_type: db.t3.medium",  # the model's own pattern refuses it first
            "environments.staging.clusters[0].node_groups[0].instance_type",
            "invalid instance type",
        ),
        (
            "instance_class: db.r5.large",
            "instance_class: db.r5.huge",
            "environments.staging.databases.primary.instance_class",
            "not an RDS instance class",
        ),
        (
            "instance_class: db.r5.large",
            "instance_class: cache.r5.large",
            "environments.staging.databases.primary.instance_class",
            "invalid instance class",
        ),
        (
            "node_type: cache.t3.medium",
            "node_type: cache.t3.mega",
            "environments.staging.databases.cache.node_type",
            "not an ElastiCache node type",
        ),
        (
            "node_type: cache.t3.medium\n        num_cache_nodes: 1",
            "node_type: cache.t3.medium\n        num_cache_nodes: 7",
            "environments.staging.databases.cache.num_cache_nodes",
            "at most 6 nodes",
        ),
        (
            "primary: us-east-1\n    clusters:\n      - name: sunday-staging",
            "primary: us-east-9\n    clusters:\n      - name: sunday-staging",
            "environments.staging.regions.primary",
            "unknown AWS region",
        ),
    ],
)
def test_instance_types_must_match_their_engine(old: str, new: str, key: str, words: str) -> None:
    err = load_edited(old, new)
    assert err.key == key
    assert words in err.detail
    assert err.line is not None and err.line > 1


def test_an_eks_node_group_needs_room_for_one_node() -> None:
    err = load_edited(
        "min_size: 2\n            max_size: 10\n            desired_size: 3",
        "min_size: 0\n            max_size: 0\n            desired_size: 0",
    )
    assert err.key == "environments.production.clusters[0].node_groups[1].max_size"
    assert "max_size of at least 1" in err.detail


def test_envplane_check_refuses_before_any_driver_runs(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    text = MATRIX.read_text().replace("nat_gateways: 1", "nat_gateways: 4", 1)
    (config / "environment-matrix.yaml").write_text(text)
    done = subprocess.run(
        [ENVPLANE, "-f", str(config / "environment-matrix.yaml"), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "ENVPLANE_HOME": str(tmp_path / "h")},
    )
    assert done.returncode == 2
    assert f"environment-matrix.yaml:{line_of('nat_gateways: 4', text)}:" in done.stderr
    assert "NAT gateways need as many public subnets" in done.stderr
