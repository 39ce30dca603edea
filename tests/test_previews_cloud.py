"""gc's orphans on the cloud target, against the real tools (tests/realkube.py, as in
tests/test_cloud_real.py): a real cloud environment is created; an orphan namespace labelled
as envplane's (for an environment nobody records), a real Helm release in it and a real
Terraform working directory with a state that manages something are planted beside it.
`gc` lists them under the orphan's name, `gc --orphans` removes them (the release
uninstalled, the namespace deleted, `terraform destroy` run, then the directory removed), and
the live cloud environment is untouched."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.test_cloud_real import ENV, NS, Cloud, cloud  # noqa: F401  (the fixture)

if TYPE_CHECKING:
    from tests.realkube import RealKube

pytest_plugins = ("tests.fakes.fixtures", "tests.realkube")
pytestmark = [pytest.mark.realtools, pytest.mark.kube]

GONE = "pr-gone"
GONE_NS = "sunday-pr-gone"
RELEASE = "leftover"
CHART = """apiVersion: v2
name: leftover
version: 0.1.0
"""
CONFIG_MAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: leftover
data:
  made-by: a test
"""
TF = {"resource": {"terraform_data": {"leftover": {"input": "made by a preview long gone"}}}}


def _namespaces(kube: RealKube) -> dict[str, str]:
    from kubernetes import client

    with kube.api_client() as api:
        items = client.CoreV1Api(api).list_namespace().items
    return {str(n.metadata.name): str(n.status.phase) for n in items}


def _plant(cl: Cloud, tmp_path: Path) -> Path:
    from kubernetes import client

    labels = {
        "app.kubernetes.io/part-of": "sunday",
        "app.kubernetes.io/managed-by": "envplane",
        "envplane.io/environment": GONE,
    }
    with cl.kube.api_client() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": GONE_NS, "labels": labels}})
    chart = tmp_path / "leftover-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(CHART)
    (chart / "templates" / "cm.yaml").write_text(CONFIG_MAP)
    cl.tools.run("helm", "install", RELEASE, str(chart), "--namespace", GONE_NS)
    workdir = cl.project.home / "environments" / GONE / "terraform"
    workdir.mkdir(parents=True)
    (workdir / "main.tf.json").write_text(json.dumps(TF))
    real = str(cl.tools.bin / "terraform")  # no stand-in: a plain local state
    cl.tools.run(real, "init", "-input=false", cwd=workdir)
    cl.tools.run(real, "apply", "-auto-approve", "-input=false", cwd=workdir)
    listed = cl.tools.run(real, "state", "list", cwd=workdir).stdout.split()
    assert listed == ["terraform_data.leftover"]
    return workdir


def _gc(cl: Cloud, *args: str) -> dict[str, Any]:
    out = json.loads(cl.envplane("gc", *args, "-o", "json"))
    assert isinstance(out, dict)
    return out


def test_gc_finds_and_removes_cloud_orphans_and_leaves_a_live_cloud_env_alone(
    cloud: Cloud,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    project = cloud.project
    project.edit_matrix(
        "      backend:\n        replicas: 2", "      backend:\n        replicas: 1"
    )
    cloud.envplane("create", ENV, "--target", "cloud")
    try:
        workdir = _plant(cloud, tmp_path)

        listed = _gc(cloud, "--dry-run")
        orphans = {o["name"]: o for o in listed["orphans"]}
        assert set(orphans) == {GONE}, listed  # staging's namespace and state are not orphans
        found = orphans[GONE]["elsewhere"]
        host = cloud.kube.server
        assert f"cloud: namespace {GONE_NS} on {host}" in found, found
        assert f"cloud: Helm release {RELEASE} in namespace {GONE_NS} on {host}" in found
        assert any(
            line.startswith(f"cloud: Terraform working directory {workdir}")
            and "manages 1 resource" in line
            for line in found
        ), found
        assert GONE_NS in _namespaces(cloud.kube) and workdir.is_dir()  # a dry run

        shown = project.run("gc")  # without --orphans: listed, nothing removed
        assert shown.returncode == 0 and f"orphan: {GONE}" in shown.stdout, shown.stderr
        assert f"namespace {GONE_NS}" in shown.stdout
        assert GONE_NS in _namespaces(cloud.kube)

        removed = _gc(cloud, "--orphans")
        assert removed["orphans_removed"] == [GONE], removed
        assert removed["orphans_left"] == {}
        assert GONE_NS not in _namespaces(cloud.kube)  # deleted and awaited
        assert cloud.helm_releases(GONE_NS) == []
        assert not workdir.parent.exists()
        assert _gc(cloud)["orphans"] == []

        # the live cloud environment: its namespace, objects and state are all still there
        assert _namespaces(cloud.kube).get(NS) == "Active"
        deployments = cloud.kubectl("get", "deployments", "-n", NS)["items"]
        assert {d["metadata"]["name"] for d in deployments} == {
            "backend-deployment",
            "frontend-deployment",
        }
        assert (project.home / "environments" / ENV / "terraform" / ".terraform").is_dir()
        assert cloud.state()["resources"]
        assert json.loads(cloud.envplane("info", ENV, "-o", "json"))["status"] == "ready"
    finally:
        with contextlib.suppress(Exception):
            cloud.tools.run("helm", "uninstall", RELEASE, "-n", GONE_NS, check=False)
        with contextlib.suppress(Exception):
            cloud.tools.run("kubectl", "delete", "namespace", GONE_NS, check=False)
        cloud.envplane("destroy", ENV, "--force")
