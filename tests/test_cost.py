"""What environments cost: the Sunday example priced line by line against figures computed by
hand from the shipped table's unit prices, unpriced never $0, the plan's cost change, the
offer-file import, and what a real local environment uses on this machine."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from envplane.cost import estimate, shipped_table
from envplane.cost.jsonstream import Reader
from envplane.errors import BadInput
from envplane.matrix import load_matrix, load_matrix_text
from tests.conftest import Project

OFFERS = Path(__file__).parent / "data" / "offers"
H = Decimal(730)
X = "\u00d7"  # the multiplication sign of "2 x t3.medium"


def D(text: str) -> Decimal:
    return Decimal(text)


# Unit prices as the shipped table states them (us-east-1), multiplied out by hand below.
EKS, NAT, GP3, RDS_GB, S3_GB, KMS = D("0.10"), D("0.045"), D("0.08"), D("0.115"), D("0.023"), 1


def _expected() -> dict[str, dict[str, Decimal]]:
    return {
        "production": {
            "EKS control plane sunday-production": EKS * H,
            "node group compute-optimized": 5 * D("0.34") * H,
            "node group compute-optimized volumes": 5 * 20 * GP3,
            "node group memory-optimized": 3 * D("0.252") * H,
            "node group memory-optimized volumes": 3 * 20 * GP3,
            "PostgreSQL primary": 2 * D("2.0") * H,  # db.r5.4xlarge, Multi-AZ doubles
            "PostgreSQL storage": 2 * 20 * RDS_GB,
            "Redis cache": 3 * D("0.411") * H,
            "NAT gateways": 3 * NAT * H,
            "S3 bucket": 50 * S3_GB,
            "KMS key": D(KMS),
        },
        "staging": {
            "EKS control plane sunday-staging": EKS * H,
            "node group general-purpose": 3 * D("0.096") * H,
            "node group general-purpose volumes": 3 * 20 * GP3,
            "PostgreSQL primary": D("0.25") * H,
            "PostgreSQL storage": 20 * RDS_GB,
            "Redis cache": D("0.068") * H,
            "NAT gateways": NAT * H,
            "S3 bucket": 50 * S3_GB,
            "KMS key": D(KMS),
        },
        "development": {
            "EKS control plane sunday-development": EKS * H,
            "node group general-purpose": 2 * D("0.0416") * H,
            "node group general-purpose volumes": 2 * 20 * GP3,
            "PostgreSQL primary": D("0.072") * H,
            "PostgreSQL storage": 20 * RDS_GB,
            "Redis cache": D("0.017") * H,
            "NAT gateways": NAT * H,
            "S3 bucket": 50 * S3_GB,
            "KMS key": D(KMS),
        },
    }


def _envs(report: Any) -> dict[str, dict[str, Any]]:
    return {e["estimate"]["environment"]: e["estimate"] for e in report["environments"]}


def test_sunday_priced_line_by_line(project: Project) -> None:
    report = project.json("cost")
    assert isinstance(report, dict)
    assert report["table"]["origin"] == "shipped"
    envs = _envs(report)
    expected = _expected()
    assert list(envs) == ["production", "staging", "development"]
    for name, lines in expected.items():
        got = {x["resource"]: D(x["monthly"]) for x in envs[name]["lines"]}
        assert got == lines, name
        assert D(envs[name]["monthly"]) == sum(lines.values())
        assert envs[name]["unpriced"] == []
    assert D(envs["development"]["monthly"]) == D("239.206")
    assert D(envs["production"]["monthly"]) == D("5804.07")
    assert D(report["monthly"]) == sum(sum(v.values()) for v in expected.values())
    # Storage is what still costs while asleep: volumes, database storage, the bucket.
    assert D(envs["staging"]["storage_monthly"]) == 60 * GP3 + 20 * RDS_GB + 50 * S3_GB

    text = project.run("cost", "development", "production")
    assert text.returncode == 0, text.stderr
    assert "node group general-purpose" in text.stdout
    assert f"2 {X} t3.medium" in text.stdout
    assert "shipped price table" in text.stdout and "as of 2025-06-01" in text.stdout
    assert "during a blue-green deploy: up to +$2.46/hour" in text.stdout  # production only
    assert text.stdout.count("during a blue-green deploy") == 1
    assert "total: $6,043/month for 2 environment(s)" in text.stdout


def test_at_min_and_max_price_the_node_group_bounds(project: Project) -> None:
    for at, size in (("min", 1), ("desired", 2), ("max", 5)):
        report = project.json("cost", "development", "--at", at)
        assert isinstance(report, dict)
        line = next(
            x
            for x in _envs(report)["development"]["lines"]
            if x["resource"] == "node group general-purpose"
        )
        assert D(line["monthly"]) == size * D("0.0416") * H
        assert line["detail"] == f"{size} {X} t3.medium"
    bad = project.run("cost", "--at", "most")
    assert bad.returncode == 2
    unknown = project.run("cost", "qa-env")
    assert unknown.returncode == 2 and "no environment 'qa-env'" in unknown.stderr


def test_what_the_table_cannot_price_is_unpriced_not_zero(project: Project) -> None:
    # x9.2xlarge passes the matrix's instance-type rules but no table has it.
    project.edit_matrix("instance_type: t3.medium", "instance_type: x9.2xlarge")
    report = project.json("cost", "development")
    assert isinstance(report, dict)
    dev = _envs(report)["development"]
    assert "node group general-purpose" not in {x["resource"] for x in dev["lines"]}
    assert dev["unpriced"] == [
        {
            "resource": "node group general-purpose",
            "reason": "no on-demand price for EC2 instance type x9.2xlarge in us-east-1",
        }
    ]
    assert D(dev["monthly"]) == D("239.206") - 2 * D("0.0416") * H
    assert report["unpriced"] == 1
    text = project.run("cost", "development")
    line = next(x for x in text.stdout.splitlines() if "x9.2xlarge" in x)
    assert line.split()[:4] == ["node", "group", "general-purpose", "unpriced"]
    assert "$0" not in line
    assert "1 unpriced (not counted)" in text.stdout


def test_region_missing_from_the_table_is_unpriced() -> None:
    matrix = load_matrix(
        Path(__file__).parents[1] / "examples/sunday/config/environment-matrix.yaml"
    )
    table = shipped_table()
    assert table.region("eu-west-3") is None
    text = matrix.path.read_text().replace("us-east-1", "eu-west-3")
    moved = load_matrix_text(text, str(matrix.path))
    est = estimate(moved, "development", prices=table)
    assert est.lines == [] and est.monthly == 0
    reasons = {u.resource: u.reason for u in est.unpriced}
    assert (
        reasons["EKS control plane sunday-development"] == "the price table has no region eu-west-3"
    )
    assert "resources in eu-west-3" in reasons
    with pytest.raises(BadInput):
        estimate(matrix, "development", at="most", prices=table)  # type: ignore[arg-type]


def test_offer_file_import_changes_the_next_cost(project: Project) -> None:
    done = project.run("prices", "import", str(OFFERS / "AmazonEC2-mini.json"), "-o", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # Windows, SQL, dedicated and capacity-reservation rows are not the Linux on-demand price.
    assert result["prices"] == {"ec2": 2, "nat_gateway_hour": 1}
    assert result["table"]["origin"] == "imported"
    assert Path(result["path"]) == project.home / "prices" / "aws_prices.json"
    rds = project.run("prices", "import", str(OFFERS / "AmazonRDS-mini.json"))
    assert rds.returncode == 0, rds.stderr
    assert "imported AmazonRDS prices" in rds.stdout

    report = project.json("cost")
    assert isinstance(report, dict)
    assert report["table"]["origin"] == "imported"
    assert report["table"]["as_of"] == "2026-11-20"
    envs = _envs(report)
    dev = {x["resource"]: D(x["monthly"]) for x in envs["development"]["lines"]}
    assert dev["node group general-purpose"] == 2 * D("0.05") * H  # was 0.0416
    assert dev["NAT gateways"] == D("0.05") * H
    assert dev["PostgreSQL primary"] == D("0.08") * H  # Single-AZ row, not Multi-AZ/MySQL
    assert dev["PostgreSQL storage"] == 20 * D("0.12")
    assert dev["Redis cache"] == D("0.017") * H  # not in the files: the shipped price stays
    # m5.large was imported for us-west-2 only; staging runs in us-east-1.
    staging = {x["resource"]: D(x["monthly"]) for x in envs["staging"]["lines"]}
    assert staging["node group general-purpose"] == 3 * D("0.096") * H
    text = project.run("cost", "development")
    assert "imported price table" in text.stdout and "as of 2026-11-20" in text.stdout


def _offer(tmp: Path, name: str, doc: Any) -> Path:
    path = tmp / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_bad_offer_files_exit_2_and_change_nothing(project: Project, tmp_path: Path) -> None:
    good = json.loads((OFFERS / "AmazonEC2-mini.json").read_text())
    bad_price = json.loads(json.dumps(good))
    term = next(iter(bad_price["terms"]["OnDemand"]["EC2LINUXT3MED"].values()))
    next(iter(term["priceDimensions"].values()))["pricePerUnit"]["USD"] = "cheap"
    no_products = {k: v for k, v in good.items() if k != "products"}
    nothing = {**good, "products": {}}
    cases = {
        "not-json.json": ('{"offerCode": "AmazonEC2", "products": {', "not an AWS Price List"),
        "s3.json": ({**good, "offerCode": "AmazonS3"}, "offerCode 'AmazonS3' is not one"),
        "no-code.json": ({"products": {}, "terms": {}}, "no `offerCode`"),
        "no-products.json": (no_products, "no `products`"),
        "bad-price.json": (bad_price, "EC2LINUXT3MED: pricePerUnit.USD 'cheap' is not a number"),
        "nothing.json": (nothing, "no on-demand price the table uses"),
        "list.json": ("[1, 2]", "expected '{'"),
    }
    for name, (doc, message) in cases.items():
        path = _offer(tmp_path, name, doc)
        result = project.run("prices", "import", str(path))
        assert result.returncode == 2, (name, result.stderr)
        assert message in result.stderr, (name, result.stderr)
        assert str(path) in result.stderr
        assert "Traceback" not in result.stderr
    missing = project.run("prices", "import", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert not (project.home / "prices" / "aws_prices.json").exists()


def test_a_damaged_imported_table_is_named_and_never_blocks_a_plan(project: Project) -> None:
    table = project.home / "prices" / "aws_prices.json"
    table.parent.mkdir(parents=True)
    table.write_text('{"as_of": "x", "source": "y", "regions": {"us-east-1": {"ec2": 3}}}')
    result = project.run("cost", "development")
    assert result.returncode == 2
    assert str(table) in result.stderr and "regions.us-east-1.ec2" in result.stderr
    plan = project.run("plan", "development")
    assert plan.returncode == 0, plan.stderr
    assert "Cost: not estimated" in plan.stdout


def test_stream_reader_crosses_chunk_boundaries(tmp_path: Path) -> None:
    # More than one 1 MiB chunk of products, so values straddle the reader's window.
    good = json.loads((OFFERS / "AmazonEC2-mini.json").read_text())
    template = good["products"]["EC2WINT3MED"]
    for i in range(6000):
        good["products"][f"FILLER{i:05d}"] = {**template, "sku": f"FILLER{i:05d}"}
    path = _offer(tmp_path, "big.json", good)
    assert path.stat().st_size > 2 << 20
    from envplane.cost.offers import read_offer

    imported = read_offer(path)
    assert imported.prices[("us-east-1", "ec2", "t3.medium")] == D("0.05")
    assert imported.prices[("us-west-2", "ec2", "m5.large")] == D("0.1")
    with path.open() as handle:
        keys = list(_top_keys(Reader(handle)))
    assert keys[:3] == ["formatVersion", "disclaimer", "offerCode"]


def _top_keys(reader: Reader) -> list[str]:
    out = []
    for key in reader.members():
        out.append(key)
        reader.skip()
    return out


@pytest.mark.slow
def test_plan_shows_the_cost_change_and_local_usage_is_measured(project: Project) -> None:
    fresh = project.run("plan", "development", "-o", "json")
    assert fresh.returncode == 0, fresh.stderr
    cost = json.loads(fresh.stdout)["cost"]
    assert cost["summary"] == "monthly cost will increase by $239 (from $0)"
    assert D(cost["monthly_after"]) == D("239.206")

    created = project.run("create", "development")
    assert created.returncode == 0, created.stderr + created.stdout
    assert "monthly cost will increase by $239 (from $0)" in created.stdout
    try:
        report = project.json("cost", "development")
        assert isinstance(report, dict)
        measured = report["environments"][0]["measured"]
        assert measured["target"] == "local"
        assert measured["processes"] >= 5  # supervisord, postgres, redis, nginx, backend, ...
        assert measured["cpu_seconds"] > 0
        assert measured["rss_bytes"] > 10 << 20
        assert measured["disk_bytes"] > 10 << 20  # a PostgreSQL cluster at least
        text = project.run("cost", "development")
        assert "measured on the local target now:" in text.stdout

        same = project.json("plan", "development")
        assert isinstance(same, dict)
        assert same["cost"]["summary"] == "monthly cost will not change ($239)"
        assert same["cost"]["lines"] == []

        project.edit_matrix("desired_size: 2", "desired_size: 4")  # development's group
        grown = project.json("plan", "development")
        assert isinstance(grown, dict)
        change = grown["cost"]
        assert change["before_known"] is True
        assert D(change["monthly_before"]) == D("239.206")
        delta = 2 * D("0.0416") * H + 2 * 20 * GP3  # two more nodes and their volumes
        assert D(change["delta"]) == delta
        assert D(change["monthly_after"]) == D("239.206") + delta
        pct = (delta * 100 / D("239.206")).quantize(D(1))
        assert change["summary"] == f"monthly cost will increase by $63.94 (+{pct}%)"
        nodes = next(x for x in change["lines"] if x["resource"] == "node group general-purpose")
        assert nodes["action"] == "update"
        assert nodes["text"] == f"node group general-purpose (2 → 4 {X} t3.medium)"
        assert D(nodes["monthly_before"]) == 2 * D("0.0416") * H
        assert D(nodes["monthly_after"]) == 4 * D("0.0416") * H
        shown = project.run("plan", "development")
        assert (
            f"~ node group general-purpose (2 → 4 {X} t3.medium)  +$60.74 ($60.74 → $121)"
            in shown.stdout
        )
        assert f"monthly cost will increase by $63.94 (+{pct}%)" in shown.stdout
    finally:
        gone = project.run("destroy", "development", "--force")
        assert gone.returncode == 0, gone.stderr
    # What stops being billed is what was last applied (2 nodes), not the edited matrix (4).
    assert "monthly cost will decrease by $239 (-100%)" in gone.stdout
    assert f"- node group general-purpose (2 {X} t3.medium)  -$60.74" in gone.stdout
    after = project.json("cost", "development")
    assert isinstance(after, dict)
    assert after["environments"][0]["measured"] is None
