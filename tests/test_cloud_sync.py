"""`envplane sync SRC DST --type config` between two cloud environments, through the real CLI:
the stand-in terraform and helm, the fake Kubernetes API (its requests recorded) and a real
moto server. DST renders SRC's config templates with its own names and Terraform outputs; the
ConfigMaps are server-side applied into DST's namespace and the Deployments reading them are
restarted by a pod-template annotation (a rollout), never deleted."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from envplane.targets.cloud import kubeconn
from envplane.targets.cloud.kube import KubeClient
from tests.conftest import Project
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Tools

pytest_plugins = ("tests.fakes.fixtures",)
REGION = "us-east-1"
SRC, DST = "sunday-staging", "sunday-development"
DEV_RDS = "sunday-development.x1y2z3.us-east-1.rds.amazonaws.com"


@pytest.fixture
def both(project: Project, staging_made: Tools, kube_env: FakeKube) -> Project:
    """staging and development on the cloud target, each with its own Terraform outputs (the
    stand-in hands out one set at a time: development's are current afterwards)."""
    created = project.run("create", "staging", "--target", "cloud")
    assert created.returncode == 0, created.stderr + created.stdout
    boto3.client("eks", region_name=REGION).create_cluster(
        name="sunday-development",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    outputs = json.loads((staging_made.tf_home / "outputs.json").read_text())
    outputs.update(
        cluster_name="sunday-development",
        rds_address=DEV_RDS,
        redis_address="master.sunday-development.abc123.use1.cache.amazonaws.com",
        storage_bucket="sunday-development-storage",
    )
    staging_made.outputs(outputs)
    created = project.run("create", "development", "--target", "cloud")
    assert created.returncode == 0, created.stderr + created.stdout
    return project


def cm(fake: FakeKube, ns: str, name: str) -> dict[str, Any]:
    return dict(fake.objects[("configmaps", ns, name)]["data"])


def test_config_sync_rewrites_for_dst_applies_and_rolls_its_deployments(
    both: Project, kube_env: FakeKube
) -> None:
    assert cm(kube_env, DST, "app-config")["LOG_LEVEL"] == "debug"  # development's own
    before = len(kube_env.requests)

    dry = both.run("sync", "staging", "development", "--type", "config", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "kubernetes/workloads" in dry.stdout + dry.stderr
    assert not [r for r in kube_env.requests[before:] if r.method != "GET"]  # nothing changed

    synced = both.run("sync", "staging", "development", "--type", "config")
    assert synced.returncode == 0, synced.stderr + synced.stdout
    app = cm(kube_env, DST, "app-config")
    assert app["LOG_LEVEL"] == "info" and app["API_RATE_LIMIT"] == "1000"  # staging's values
    assert app["DEPLOYMENT_ENVIRONMENT"] == "development"  # DST's own name
    database = json.loads(cm(kube_env, DST, "backend-config")["database.json"])
    assert database["connection"]["host"] == DEV_RDS  # DST's endpoint, from its outputs
    assert cm(kube_env, SRC, "app-config")["LOG_LEVEL"] == "info"  # SRC untouched

    after = kube_env.requests[before:]
    applied = [r for r in after if r.method == "PATCH" and "/configmaps/" in r.path]
    assert applied and all(r.path.startswith(f"/api/v1/namespaces/{DST}/") for r in applied)
    assert all(r.content_type == "application/apply-patch+yaml" for r in applied)
    assert all("force" not in r.query for r in applied)  # a hand edit would be a conflict
    restarts = [r for r in after if r.query.get("fieldManager") == "envplane-restart"]
    # Only app-config differs between the two templates; the frontend reads frontend-config
    # alone (the same for DST either way), so it keeps its pods.
    assert [r.path.rsplit("/", 1)[1] for r in restarts] == ["backend-deployment"]
    assert all(f"/namespaces/{DST}/deployments/" in r.path for r in restarts)
    assert not [r for r in after if r.method == "DELETE"]  # a rollout, not a delete
    dep = kube_env.objects[("deployments", DST, "backend-deployment")]
    assert "envplane.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    assert dep["status"]["readyReplicas"] == dep["spec"]["replicas"]  # waited for

    # The template choice is recorded: info still works and the next sync has nothing to do.
    info = both.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "ready"
    mark = len(kube_env.requests)
    again = both.run("sync", "staging", "development", "--type", "config")
    assert again.returncode == 0, again.stderr
    # (Looking for drift sends server-side apply dry runs, which store nothing.)
    written = [r for r in kube_env.requests[mark:] if r.query.get("dryRun") != "All"]
    assert not [r for r in written if r.query.get("fieldManager")]


def test_a_configmap_dst_lost_is_applied_again_and_its_readers_restarted(
    both: Project, kube_env: FakeKube
) -> None:
    synced = both.run("sync", "staging", "development", "--type", "config")
    assert synced.returncode == 0, synced.stderr
    del kube_env.objects[("configmaps", DST, "backend-config")]  # deleted by hand
    mark = len(kube_env.requests)
    again = both.run("update", "development")
    assert again.returncode == 0, again.stderr + again.stdout
    assert "database.json" in cm(kube_env, DST, "backend-config")
    restarted = {
        r.path.rsplit("/", 1)[1]
        for r in kube_env.requests[mark:]
        if r.query.get("fieldManager") == "envplane-restart"
    }
    assert restarted == {"backend-deployment"}  # the frontend does not read backend-config


def test_a_value_changed_by_hand_in_dst_is_a_conflict_naming_field_and_manager(
    both: Project, kube_env: FakeKube
) -> None:
    api = kubeconn.from_kubeconfig(os.environ["ENVPLANE_KUBECONFIG"], None).api
    live = kube_env.objects[("configmaps", DST, "app-config")]
    edited = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app-config", "namespace": DST},
        "data": {"LOG_LEVEL": "trace"},
    }
    KubeClient(api).apply(edited, manager="kubectl-edit")  # someone's hand edit
    assert live["data"]["LOG_LEVEL"] == "debug"
    result = both.run("sync", "staging", "development", "--type", "config")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "applying ConfigMap/app-config in sunday-development: conflict" in result.stderr
    assert '.data.LOG_LEVEL (managed by "kubectl-edit")' in result.stderr
    assert "--force-conflicts" in result.stderr  # the hint: how to hand it to envplane
    assert cm(kube_env, DST, "app-config")["LOG_LEVEL"] == "trace"  # not overwritten


def test_sync_refuses_a_dst_not_created_and_a_cloud_local_pair(
    project: Project, staging_made: Tools, kube_env: FakeKube
) -> None:
    created = project.run("create", "staging", "--target", "cloud")
    assert created.returncode == 0, created.stderr
    missing = project.run("sync", "staging", "development", "--type", "config")
    assert missing.returncode == 2
    assert "target environment 'development' has not been created" in missing.stderr
    local = project.run("create", "development")
    assert local.returncode == 0, local.stderr + local.stdout
    mark = len(kube_env.requests)
    for a, b in (("staging", "development"), ("development", "staging")):
        refused = project.run("sync", a, b, "--type", "config")
        assert refused.returncode == 2, refused.stderr
        assert "configuration and data move only between environments of the same target" in (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr
    assert [r for r in kube_env.requests[mark:] if r.method != "GET"] == []
