"""boto3 code against a real moto server process on loopback (not in-process patching):
EKS status and tokens, Secrets Manager, RDS and ElastiCache snapshots, S3 sync."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from envplane.errors import OperationFailed
from envplane.targets.cloud import aws

REGION = "us-east-1"  # the moto fixture's default region
pytest_plugins = ("tests.fakes.fixtures",)


def make_cluster(name: str) -> None:
    boto3.client("eks", region_name=REGION).create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )


def test_eks_cluster_status_as_the_seed_validates_it(aws_env: str) -> None:
    assert aws.eks_cluster(REGION, "sunday-staging") is None
    make_cluster("sunday-staging")
    found = aws.eks_cluster(REGION, "sunday-staging")
    assert found is not None
    assert found.status == "ACTIVE"
    assert found.endpoint.startswith("https://")
    assert found.ca_data


def test_eks_token_is_a_presigned_caller_identity_url(aws_env: str) -> None:
    token = aws.eks_token(REGION, "sunday-staging")
    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    body = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    query = parse_qs(urlsplit(url).query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["X-Amz-Expires"] == ["60"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert query["X-Amz-Signature"][0]


def test_secret_values_plain_and_json_field(aws_env: str) -> None:
    sm = boto3.client("secretsmanager", region_name=REGION)
    rds = sm.create_secret(
        Name="rds!db-1", SecretString=json.dumps({"username": "app", "password": "s3cr3t"})
    )
    redis = sm.create_secret(Name="sunday-staging/redis-auth-1", SecretString="t0ken")
    assert aws.secret_value(REGION, rds["ARN"], "password") == "s3cr3t"
    assert aws.secret_value(REGION, redis["ARN"]) == "t0ken"
    with pytest.raises(OperationFailed, match="no JSON field 'pass'"):
        aws.secret_value(REGION, rds["ARN"], "pass")
    with pytest.raises(OperationFailed, match="reading secret missing: ResourceNotFoundException"):
        aws.secret_value(REGION, "missing")


def test_rds_snapshot_and_restore(aws_env: str) -> None:
    rds = boto3.client("rds", region_name=REGION)
    rds.create_db_instance(
        DBInstanceIdentifier="sunday-staging",
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        EngineVersion="14.9",
        AllocatedStorage=20,
        MasterUsername="app",
        ManageMasterUserPassword=True,
    )
    arn = aws.snapshot_database(REGION, "sunday-staging", "backup-staging-1")
    assert arn.endswith(":snapshot:backup-staging-1")
    snaps = rds.describe_db_snapshots(DBInstanceIdentifier="sunday-staging", SnapshotType="manual")[
        "DBSnapshots"
    ]
    assert [s["DBSnapshotIdentifier"] for s in snaps] == ["backup-staging-1"]
    assert snaps[0]["Status"] == "available"
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for cidr, zone in (("10.1.0.0/20", "us-east-1a"), ("10.1.16.0/20", "us-east-1b"))
    ]
    rds.create_db_subnet_group(
        DBSubnetGroupName="sunday-staging",
        DBSubnetGroupDescription="private subnets",
        SubnetIds=subnets,
    )
    group = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    address = aws.restore_database(
        REGION,
        "backup-staging-1",
        "sunday-staging-restored",
        instance_class="db.r5.large",
        subnet_group="sunday-staging",
        security_groups=[group],
    )
    assert "sunday-staging-restored" in address
    with pytest.raises(OperationFailed, match="snapshotting RDS instance nope"):
        aws.snapshot_database(REGION, "nope", "x", wait=False)


def test_elasticache_snapshot(aws_env: str) -> None:
    ec = boto3.client("elasticache", region_name=REGION)
    ec.create_replication_group(
        ReplicationGroupId="sunday-staging",
        ReplicationGroupDescription="redis",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        NumCacheClusters=1,
    )
    status = aws.snapshot_cache(REGION, "sunday-staging", "backup-staging-redis")
    assert status in ("creating", "available")
    names = [s["SnapshotName"] for s in ec.describe_snapshots()["Snapshots"]]
    assert "backup-staging-redis" in names


def test_s3_sync_both_ways(aws_env: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="sunday-staging-storage")
    s3.put_object(Bucket="sunday-staging-storage", Key="a.json", Body=b'{"a": 1}')
    s3.put_object(Bucket="sunday-staging-storage", Key="dir/b.csv", Body=b"x,y\n1,2\n")
    s3.put_object(Bucket="sunday-staging-storage", Key="../escape", Body=b"no")
    down = tmp_path / "down"
    report = aws.sync_bucket_to_dir(REGION, "sunday-staging-storage", down)
    assert sorted(report.copied) == ["a.json", "dir/b.csv"]
    assert (down / "dir" / "b.csv").read_bytes() == b"x,y\n1,2\n"
    assert not (tmp_path / "escape").exists()
    again = aws.sync_bucket_to_dir(REGION, "sunday-staging-storage", down)
    assert again.copied == [] and again.unchanged == 2
    (down / "a.json").write_text('{"a": 2}')
    (down / "new.txt").write_text("new")
    s3.create_bucket(Bucket="sunday-restored-storage")
    s3.put_object(Bucket="sunday-restored-storage", Key="old.txt", Body=b"old")
    up = aws.sync_dir_to_bucket(REGION, down, "sunday-restored-storage", delete=True)
    assert sorted(up.copied) == ["a.json", "dir/b.csv", "new.txt"] and up.deleted == ["old.txt"]
    body = s3.get_object(Bucket="sunday-restored-storage", Key="a.json")["Body"].read()
    assert body == b'{"a": 2}'
    with pytest.raises(OperationFailed, match="NoSuchBucket"):
        aws.sync_bucket_to_dir(REGION, "no-such-bucket", down)


def test_no_credentials_is_a_clear_error(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(OperationFailed) as caught:
        aws.eks_cluster(REGION, "sunday-staging")
    assert "Unable to locate credentials" in caught.value.message
    assert caught.value.hint and "AWS credentials" in caught.value.hint
