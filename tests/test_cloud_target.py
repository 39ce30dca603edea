"""CloudTarget through the registry, the three resources applied, read and destroyed in order,
with the stand-in terraform and helm, the fake Kubernetes API and a real moto server for AWS
(EKS status, the RDS and Redis secrets in Secrets Manager)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from envplane.errors import OperationFailed
from envplane.matrix import load_matrix
from envplane.render.cloud import desired_cloud
from envplane.render.model import DesiredEnvironment
from envplane.targets.base import ServiceStatus
from envplane.targets.registry import get_target
from tests.conftest import REPO
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Ctx, Tools

MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"

REGION = "us-east-1"  # the moto fixture's default region
pytest_plugins = ("tests.fakes.fixtures",)


@pytest.fixture
def staging(staging_made: Tools) -> DesiredEnvironment:
    return desired_cloud(load_matrix(MATRIX), "staging")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_create_read_and_destroy_an_environment(
    staging: DesiredEnvironment, env_ctx: Ctx, tools: Tools, kube_env: FakeKube
) -> None:
    target = get_target("cloud")
    ctx = env_ctx.ctx
    for res in staging.resources:
        target.apply(ctx, "create", res)
    ns = "sunday-staging"
    objects: dict[tuple[str, str, str], dict[str, Any]] = kube_env.objects
    secret = objects[("secrets", ns, "app-secrets")]
    assert secret["data"] == {"DATABASE_PASSWORD": b64("pg-pw"), "REDIS_PASSWORD": b64("redis-pw")}
    database = json.loads(objects[("configmaps", ns, "backend-config")]["data"]["database.json"])
    assert database["connection"]["host"] == "sunday-staging.c9akciq32.us-east-1.rds.amazonaws.com"
    container = objects[("deployments", ns, "backend-deployment")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["REDIS_HOST"] == "master.sunday-staging.abc123.use1.cache.amazonaws.com"
    assert "pg-pw" not in json.dumps(kube_env.calls("PATCH", "/deployments/")[0].body)
    patched = [r.path.rsplit("/", 2)[-2] for r in kube_env.calls("PATCH", f"/namespaces/{ns}/")]
    assert patched.index("secrets") < patched.index("deployments")
    for res in staging.resources:
        seen = target.observe(ctx, res)
        assert seen.exists and seen.healthy, (res.key, seen)
    assert sorted(target.services(ctx, staging), key=lambda s: s.name) == [
        ServiceStatus("backend", 2, 2),
        ServiceStatus("frontend", 2, 2),
    ]
    urls = {e.name: e.url for e in target.endpoints(ctx, staging)}
    assert urls["postgres"] == (
        "postgresql://app:***@sunday-staging.c9akciq32.us-east-1.rds.amazonaws.com:5432/"
        "sunday_staging?sslmode=require"
    )
    assert urls["frontend"].startswith("http://frontend-service-")
    assert urls["storage"] == "s3://sunday-staging-storage"
    assert "redis-pw" not in json.dumps(urls) and "pg-pw" not in json.dumps(urls)

    for res in reversed(staging.resources):  # helm, kubernetes, terraform
        target.delete(ctx, res)
    assert ("namespaces", "", ns) not in objects
    assert tools.applied() == []
    assert target.leftovers(ctx, {}) == [f"directory {ctx.env_dir} still exists"]
    target.teardown(ctx)
    assert not ctx.env_dir.exists()
    assert target.leftovers(ctx, {}) == []


def test_kubernetes_before_terraform_says_what_to_do(
    staging: DesiredEnvironment, env_ctx: Ctx
) -> None:
    with pytest.raises(OperationFailed, match="not initialised") as caught:
        get_target("cloud").apply(env_ctx.ctx, "create", staging.resource("kubernetes/workloads"))
    assert caught.value.hint and "resume" in caught.value.hint


def test_teardown_keeps_what_terraform_still_manages(
    staging: DesiredEnvironment, env_ctx: Ctx, tools: Tools
) -> None:
    target = get_target("cloud")
    target.apply(env_ctx.ctx, "create", staging.resource("terraform/infrastructure"))
    target.teardown(env_ctx.ctx)
    assert env_ctx.ctx.env_dir.exists()
    left = target.leftovers(env_ctx.ctx, {})
    assert "terraform still manages aws_eks_cluster.sunday-staging" in left


def test_a_cluster_that_is_not_active_fails_the_infrastructure_step(
    staging: DesiredEnvironment, env_ctx: Ctx, tools: Tools
) -> None:
    boto3.client("eks", region_name=REGION).delete_cluster(name="sunday-staging")
    with pytest.raises(OperationFailed, match="EKS cluster sunday-staging not found"):
        get_target("cloud").apply(
            env_ctx.ctx, "create", staging.resource("terraform/infrastructure")
        )


def test_unknown_kind_is_refused(env_ctx: Ctx) -> None:
    from envplane.errors import BadInput
    from envplane.render.model import Resource

    with pytest.raises(BadInput, match="no resource kind 'postgres'"):
        get_target("cloud").apply(env_ctx.ctx, "create", Resource("postgres", "postgres", {}))
