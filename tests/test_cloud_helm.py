"""The Helm driver against a stand-in `helm` first on PATH (tests/fakes/helm), installing the
rendered kube-prometheus-stack values; the cluster is the fake Kubernetes API."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from envplane.errors import OperationFailed, ToolMissing
from envplane.matrix import load_matrix
from envplane.render.cloud import desired_cloud
from envplane.targets.cloud import monitoring
from envplane.targets.cloud.helm import Helm
from tests.conftest import REPO
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Ctx, Tools

MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"

pytest_plugins = ("tests.fakes.fixtures",)


@pytest.fixture
def helm_spec() -> dict[str, Any]:
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    return dict(desired.resource("helm/monitoring").spec)


def test_install_as_the_seed_does_with_grafana_password_from_the_store(
    tools: Tools, kube_env: FakeKube, env_ctx: Ctx, helm_spec: dict[str, Any]
) -> None:
    monitoring.apply(env_ctx.ctx, helm_spec)
    values = env_ctx.ctx.env_dir / "helm" / "values-monitoring.yaml"
    assert tools.commands("helm") == [
        [
            "repo",
            "add",
            "prometheus-community",
            "https://prometheus-community.github.io/helm-charts",
            "--force-update",
        ],
        ["repo", "update", "prometheus-community"],
        [
            "upgrade",
            "--install",
            "prometheus",
            "prometheus-community/kube-prometheus-stack",
            "--version",
            "69.4.1",
            "--namespace",
            "monitoring",
            "--create-namespace",
            "--values",
            str(values),
            "--wait",
            "--timeout",
            "10m",
        ],
    ]
    install = tools.calls("helm")[-1]
    assert yaml.safe_load(str(install["values"])) == helm_spec["values"]
    assert install["kube"] == {"KUBECONFIG": os.environ["ENVPLANE_KUBECONFIG"]}
    assert (values.stat().st_mode & 0o777) == 0o600
    secret = kube_env.objects[("secrets", "monitoring", "grafana-admin")]
    assert secret["data"]["admin-password"] == "Z3JhZmFuYS1zZWNyZXQtdmFsdWU="  # base64
    assert all("grafana-secret-value" not in " ".join(c) for c in tools.commands("helm"))
    ns = kube_env.objects[("namespaces", "", "monitoring")]
    assert ns["metadata"]["labels"]["envplane.io/environment"] == "staging"
    seen = monitoring.observe(env_ctx.ctx, helm_spec)
    assert seen.exists and seen.healthy and "deployed" in seen.detail


def test_uninstall_removes_the_release_and_our_namespace(
    tools: Tools, kube_env: FakeKube, env_ctx: Ctx, helm_spec: dict[str, Any]
) -> None:
    monitoring.apply(env_ctx.ctx, helm_spec)
    monitoring.delete(env_ctx.ctx, helm_spec)
    assert tools.commands("helm")[-1] == [
        "uninstall",
        "prometheus",
        "--namespace",
        "monitoring",
        "--wait",
    ]
    assert ("namespaces", "", "monitoring") not in kube_env.objects
    assert monitoring.observe(env_ctx.ctx, helm_spec).exists is False
    monitoring.delete(env_ctx.ctx, helm_spec)  # again: already gone is fine


def test_a_namespace_someone_else_made_is_left_alone(
    tools: Tools, kube_env: FakeKube, env_ctx: Ctx, helm_spec: dict[str, Any]
) -> None:
    monitoring.apply(env_ctx.ctx, helm_spec)
    kube_env.objects[("namespaces", "", "monitoring")]["metadata"]["labels"] = {}
    monitoring.delete(env_ctx.ctx, helm_spec)
    assert ("namespaces", "", "monitoring") in kube_env.objects


def test_failed_install_is_an_operation_failure(
    tools: Tools, kube_env: FakeKube, env_ctx: Ctx, helm_spec: dict[str, Any]
) -> None:
    tools.fail("helm", "upgrade")
    with pytest.raises(OperationFailed, match="context deadline exceeded"):
        monitoring.apply(env_ctx.ctx, helm_spec)


def test_helm_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ENVPLANE_HELM", raising=False)
    with pytest.raises(ToolMissing, match="'helm' is not on PATH") as caught:
        Helm(print, {})
    assert caught.value.hint and "helm 3" in caught.value.hint
