"""The cloud target through the real CLI: plan offline, create, info, destroy — with the
stand-in terraform and helm first on PATH, the fake Kubernetes API and a real moto server.
The same journal, lock and exit codes as the local target."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tests.conftest import Project
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Tools

pytest_plugins = ("tests.fakes.fixtures",)


def test_plan_is_offline_and_lists_what_terraform_would_manage(project: Project) -> None:
    # No AWS variables, no kubeconfig, no terraform: a plan still works.
    plan = project.json("plan", "staging", "--target", "cloud")
    assert isinstance(plan, dict)
    steps = {s["resource"]: s for s in plan["steps"]}
    assert list(steps) == ["terraform/infrastructure", "kubernetes/workloads", "helm/monitoring"]
    assert "aws_eks_cluster.sunday-staging" in steps["terraform/infrastructure"]["contains"]
    assert "Deployment/backend-deployment" in steps["kubernetes/workloads"]["contains"]
    assert not (project.home / "environments" / "staging").exists()


def test_create_info_destroy_on_the_cloud_target(
    project: Project, staging_made: Tools, kube_env: FakeKube
) -> None:
    created = project.run("create", "staging", "--target", "cloud")
    assert created.returncode == 0, created.stderr + created.stdout
    commands = [c[0] for c in staging_made.commands("terraform")]
    assert commands[:3] == ["init", "plan", "apply"]
    init = staging_made.commands("terraform")[0]
    assert any("key=environments/staging/terraform.tfstate" in arg for arg in init)
    assert ("deployments", "sunday-staging", "backend-deployment") in kube_env.objects

    info = project.json("info", "staging")
    assert isinstance(info, dict)
    assert info["target"] == "cloud" and info["status"] == "ready"
    assert info["services"]["backend"]["desired"] == 2
    # The seed's get_environment_info: the cluster's status, from `aws eks describe-cluster`.
    assert str(info["platform"]).startswith("EKS cluster ") and ": ACTIVE" in info["platform"]

    # The cluster unreachable (no kubeconfig): list still answers, saying what is missing.
    listed = project.run("list", "-o", "json", ENVPLANE_KUBECONFIG="/nonexistent/kubeconfig")
    assert listed.returncode == 0, listed.stderr
    entry = next(e for e in json.loads(listed.stdout) if e["name"] == "staging")
    assert entry["status"] == "ready"
    assert entry["notes"][0].startswith("live status unavailable")

    again = project.run("create", "staging", "--target", "cloud")
    assert again.returncode == 2 and "already exists" in again.stderr

    destroyed = project.run("destroy", "staging", "--force")
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout
    assert "destroy" in [c[0] for c in staging_made.commands("terraform")]
    assert project.json("info", "staging")["status"] == "destroyed"  # type: ignore[index]


def test_missing_terraform_is_a_clear_error_and_nothing_is_recorded(
    project: Project, aws_env: str, kube_env: FakeKube
) -> None:
    result = project.run("create", "staging", "--target", "cloud", PATH="/usr/bin:/bin")
    assert result.returncode == 1, result.stderr
    assert "terraform" in result.stderr and "tofu" in result.stderr
    assert "Traceback" not in result.stderr
    # Checked before the operation: no half-made environment, no operation to resume.
    assert project.json("info", "staging")["status"] == "not created"  # type: ignore[index]
    assert project.json("history", "staging") == []
