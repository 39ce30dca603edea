"""`envplane validate` of a cloud environment through the real CLI: the example's staging
created with the stand-in terraform and helm, the fake Kubernetes API (its pods, endpoints and
service proxy) and a real moto server holding what Terraform would have made in AWS (the EKS
cluster and its node group, RDS, the ElastiCache group, the bucket, the KMS key, the
passwords in Secrets Manager).

moto answers describe calls with the state it was given: a node group or an RDS instance is
ACTIVE/available as soon as it is made (no CREATING phase, no health issues), so the failing
cases here change what moto can change (sizes, versioning, a deleted resource) and what the
fake API holds (a pod in CrashLoopBackOff, a missing NetworkPolicy, a plaintext secret)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from tests.conftest import Project
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Tools

pytest_plugins = ("tests.fakes.fixtures",)
REGION = "us-east-1"
NS = "sunday-staging"
PROMETHEUS = "monitoring/prometheus-kube-prometheus-prometheus:9090"
FRONTEND = f"{NS}/frontend-service:80"


def _aws_made(tools: Tools) -> dict[str, str]:
    """Beside staging_made's cluster and secrets: the node group, RDS, Redis, bucket and key
    as staging's Terraform files describe them; returns the outputs handed to the stand-in."""
    eks = boto3.client("eks", region_name=REGION)
    eks.create_nodegroup(
        clusterName="sunday-staging",
        nodegroupName="general-purpose",
        nodeRole="arn:aws:iam::123456789012:role/nodes",
        subnets=["subnet-1", "subnet-2"],
        scalingConfig={"minSize": 2, "maxSize": 10, "desiredSize": 3},
    )
    kms = boto3.client("kms", region_name=REGION)
    key = kms.create_key(Description="sunday-staging")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=key)
    boto3.client("rds", region_name=REGION).create_db_instance(
        DBInstanceIdentifier="sunday-staging",
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="app",
        MasterUserPassword="not-the-real-one",
        StorageEncrypted=True,
        KmsKeyId=key,
    )
    boto3.client("elasticache", region_name=REGION).create_replication_group(
        ReplicationGroupId="sunday-staging",
        ReplicationGroupDescription="staging",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        NumCacheClusters=1,
        AtRestEncryptionEnabled=True,
        TransitEncryptionEnabled=True,
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="sunday-staging-storage")
    s3.put_bucket_versioning(
        Bucket="sunday-staging-storage", VersioningConfiguration={"Status": "Enabled"}
    )
    s3.put_bucket_encryption(
        Bucket="sunday-staging-storage",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    outputs = json.loads((tools.tf_home / "outputs.json").read_text())
    outputs["kms_key_arn"] = key
    tools.outputs(outputs)
    return dict(outputs)


@pytest.fixture
def staging(project: Project, staging_made: Tools, kube_env: FakeKube) -> Project:
    _aws_made(staging_made)
    created = project.run("create", "staging", "--target", "cloud")
    assert created.returncode == 0, created.stderr + created.stdout
    kube_env.proxies[PROMETHEUS] = lambda path: (
        (200, "Prometheus Server is Ready.\n") if path == "/-/ready" else (404, "")
    )
    kube_env.proxies[FRONTEND] = lambda path: (
        (200, '{"status":"ok"}') if path == "/api/health" else (404, "")
    )
    return project


def validate(project: Project, *args: str) -> tuple[int, dict[str, Any], str]:
    result = project.run("validate", "staging", "--level", "comprehensive", "-o", "json", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout else {}, result.stderr


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{c['category']}: {c['name']}": c for c in report["checks"]}


def test_a_healthy_cloud_environment_passes_every_area(staging: Project, tmp_path: Path) -> None:
    junit = tmp_path / "validate.xml"
    code, report, err = validate(staging, "--junit", str(junit))
    checks = by_name(report)
    failed = {k: c["detail"] for k, c in checks.items() if c["status"] == "fail"}
    assert code == 0 and not failed, (failed, err)
    passed = {k for k, c in checks.items() if c["status"] == "pass"}
    assert {
        "infrastructure: eks cluster active",
        "infrastructure: node group general-purpose",
        "infrastructure: rds available",
        "infrastructure: elasticache available",
        "infrastructure: bucket",
        "applications: deployment backend-deployment",
        "applications: deployment frontend-deployment",
        "applications: pods running and ready",
        "networking: service backend-service has endpoints",
        "networking: service frontend-service has endpoints",
        "networking: network policies",
        "networking: load balancer address",
        "monitoring: helm release prometheus",
        "monitoring: prometheus ready",
        "security: kms key enabled",
        "security: rds storage encrypted",
        "security: elasticache encrypted",
        "security: secrets in secrets manager",
        "security: app secret present",
        "security: no plaintext secret in a configmap",
        "smoke: api round trip",
    } <= passed
    # Each says what it looked at.
    assert checks["infrastructure: node group general-purpose"]["detail"] == (
        "node group general-purpose ACTIVE at 2/3/10 (min/desired/max)"
    )
    assert checks["applications: pods running and ready"]["detail"] == (
        f"4 pod(s) in {NS} Running and Ready"
    )
    assert (
        (checks["infrastructure: bucket"]["detail"])
        == "bucket sunday-staging-storage: versioning Enabled, encryption AES256"
    )
    # JUnit as on the local target: a testsuite per area, a testcase per check.
    suites = {s.get("name"): s for s in ET.parse(junit).getroot()}
    assert set(suites) == {
        "infrastructure",
        "applications",
        "networking",
        "monitoring",
        "security",
        "smoke",
    }
    assert suites["applications"].get("failures") == "0"
    cases = [c.get("name") for c in suites["infrastructure"]]
    assert "eks cluster active" in cases and "node group general-purpose" in cases


def test_failures_name_what_is_wrong_and_what_to_do(
    staging: Project, kube_env: FakeKube, staging_made: Tools, tmp_path: Path
) -> None:
    kube_env.unready_pods["backend-deployment-1"] = "CrashLoopBackOff"
    boto3.client("eks", region_name=REGION).update_nodegroup_config(
        clusterName="sunday-staging",
        nodegroupName="general-purpose",
        scalingConfig={"minSize": 1, "maxSize": 10, "desiredSize": 1},
    )
    boto3.client("s3", region_name=REGION).put_bucket_versioning(
        Bucket="sunday-staging-storage", VersioningConfiguration={"Status": "Suspended"}
    )
    del kube_env.objects[("networkpolicies", NS, "default-deny")]
    # A hand-made ConfigMap holding the Redis AUTH token in clear, under a plain key.
    kube_env.objects[("configmaps", NS, "debug")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "debug", "namespace": NS},
        "data": {"notes": "redis: redis-pw-long-enough"},
    }
    outputs = json.loads((staging_made.tf_home / "outputs.json").read_text())
    boto3.client("secretsmanager", region_name=REGION).put_secret_value(
        SecretId=outputs["redis_auth_secret_arn"], SecretString="redis-pw-long-enough"
    )
    del kube_env.proxies[PROMETHEUS]  # its pods not ready: the API server answers 503

    junit = tmp_path / "validate.xml"
    code, report, _err = validate(staging, "--junit", str(junit))
    assert code == 1
    checks = by_name(report)
    failed = {k: c["detail"] for k, c in checks.items() if c["status"] == "fail"}
    assert set(failed) == {
        "infrastructure: node group general-purpose",
        "infrastructure: bucket",
        "applications: deployment backend-deployment",
        "applications: pods running and ready",
        "networking: network policies",
        "monitoring: prometheus ready",
        "security: no plaintext secret in a configmap",
    }, failed
    assert failed["infrastructure: node group general-purpose"] == (
        "node group general-purpose is at 1/1/10 (min/desired/max), the matrix says 2/3/10; "
        "`envplane update` sets them"
    )
    assert "versioning Suspended, the matrix says Enabled" in failed["infrastructure: bucket"]
    assert failed["applications: deployment backend-deployment"].startswith(
        "Deployment backend-deployment: 1/2 ready; look at its pods: kubectl -n sunday-staging"
    )
    pods = failed["applications: pods running and ready"]
    assert "1 of 4 pod(s) not Running and Ready: backend-deployment-1 (Running, not Ready: " in pods
    assert "CrashLoopBackOff, 4 restarts" in pods
    assert pods.endswith(f"kubectl -n {NS} describe pod backend-deployment-1")
    assert (
        "NetworkPolicies missing in sunday-staging: default-deny"
        in (failed["networking: network policies"])
    )
    assert "-> 503" in failed["monitoring: prometheus ready"]
    assert (
        'no endpoints available for service "prometheus-kube-prometheus-prometheus"'
        in (failed["monitoring: prometheus ready"])
    )
    plain = failed["security: no plaintext secret in a configmap"]
    assert "ConfigMap debug key notes holds the value of REDIS_PASSWORD" in plain
    assert "redis-pw-long-enough" not in json.dumps(report)  # named, never shown
    # The backend's Service still has its other pod as an endpoint.
    assert checks["networking: service backend-service has endpoints"]["status"] == "pass"
    failures = [c for s in ET.parse(junit).getroot() for c in s if c.find("failure") is not None]
    assert len(failures) == len(failed)


def test_a_cache_being_deleted_fails_its_check(staging: Project) -> None:
    # moto keeps a deleted replication group for a while in status "deleting", as AWS does.
    boto3.client("elasticache", region_name=REGION).delete_replication_group(
        ReplicationGroupId="sunday-staging"
    )
    code, report, _ = validate(staging)
    checks = by_name(report)
    assert code == 1
    assert checks["infrastructure: elasticache available"]["detail"] == (
        "ElastiCache group sunday-staging is deleting, not available; wait"
    )


def test_validate_of_a_cloud_environment_not_created_is_bad_input(
    project: Project, aws_env: str
) -> None:
    result = project.run("validate", "staging", "--level", "basic")
    assert result.returncode == 2
    assert "environment 'staging' is not created; nothing to validate" in result.stderr
    assert "Traceback" not in result.stderr
