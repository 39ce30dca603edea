"""The realtools tier proven end to end: the official Kubernetes client, real helm and real
terraform against a real control plane (tests/realkube.py) and the moto S3 server."""

from __future__ import annotations

import json
import textwrap
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # the fixtures come through pytest_plugins (not imported: assert rewriting)
    from tests.realkube import RealKube, RealTools

pytest_plugins = ("tests.fakes.fixtures", "tests.realkube")
pytestmark = pytest.mark.realtools

APPLY = "application/apply-patch+yaml"
MANAGER = "realkube-smoke"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _apply(method: Any, *args: Any) -> dict[str, Any]:
    """Server-side apply through a generated patch_* method of the official client."""
    response = method(
        *args, field_manager=MANAGER, force=True, _content_type=APPLY, _preload_content=False
    )
    return dict(json.loads(response.data))


def test_the_control_plane_answers_with_its_version_and_demands_the_token(
    real_kube: RealKube,
) -> None:
    from kubernetes import client

    assert real_kube.version.startswith("v1.")
    assert real_kube.request("/readyz")[0] == 200
    with real_kube.api_client() as api:
        info: Any = client.VersionApi(api).get_code()
        assert info.git_version == real_kube.version
        me: Any = client.CoreV1Api(api).list_namespace().items
        assert {"default", "kube-system"} <= {n.metadata.name for n in me}
    assert real_kube.request("/api/v1/namespaces", token="not-the-token")[0] == 401


def test_a_deployment_gets_replicaset_and_pods_and_reports_ready_once_marked(
    real_kube: RealKube,
) -> None:
    from kubernetes import client

    ns = _unique("smoke")
    labels = {"app.kubernetes.io/name": "web"}
    with real_kube.api_client() as api:
        core: Any = client.CoreV1Api(api)
        apps: Any = client.AppsV1Api(api)
        core.create_namespace({"metadata": {"name": ns}})
        cm = _apply(
            core.patch_namespaced_config_map,
            "web-config",
            ns,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "web-config", "namespace": ns},
                "data": {"LOG_LEVEL": "warn"},
            },
        )
        assert cm["data"] == {"LOG_LEVEL": "warn"}
        assert [f["manager"] for f in cm["metadata"]["managedFields"]] == [MANAGER]
        manifest = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.9"}]},
                },
            },
        }
        dep = _apply(apps.patch_namespaced_deployment, "web", ns, manifest)
        assert dep["metadata"]["generation"] == 1
        again = _apply(apps.patch_namespaced_deployment, "web", ns, manifest)
        assert again["metadata"]["generation"] == 1  # the same apply changes nothing

        def replica_sets() -> list[Any]:
            return list(apps.list_namespaced_replica_set(ns).items)

        def pods() -> list[Any]:
            return list(
                core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/name=web").items
            )

        real_kube.wait("the Deployment's ReplicaSet", lambda: len(replica_sets()) == 1)
        rs = replica_sets()[0]
        assert rs.metadata.owner_references[0].name == "web"
        real_kube.wait("the ReplicaSet's two pods", lambda: len(pods()) == 2)
        assert all(p.status.phase == "Pending" for p in pods())  # no kubelet: nothing runs them
        assert apps.read_namespaced_deployment_status("web", ns).status.ready_replicas is None

        assert sorted(real_kube.mark_pods_ready(ns)) == sorted(p.metadata.name for p in pods())
        assert real_kube.mark_pods_ready(ns) == []  # already ready: nothing to do

        def deployment_ready() -> bool:
            status = apps.read_namespaced_deployment_status("web", ns).status
            available = {c.type: c.status for c in status.conditions or []}.get("Available")
            return bool(
                status.ready_replicas == 2
                and status.available_replicas == 2
                and status.updated_replicas == 2
                and status.observed_generation == 1
                and available == "True"
            )

        real_kube.wait("the Deployment reporting 2/2 ready", deployment_ready)
        assert all(p.status.phase == "Running" for p in pods())
        core.delete_namespace(ns)


CHART = {
    "Chart.yaml": """\
        apiVersion: v2
        name: smoke
        version: 0.1.0
        appVersion: "1.0.0"
        """,
    "values.yaml": """\
        greeting: hello
        """,
    "templates/configmap.yaml": """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {{ .Release.Name }}-config
        data:
          greeting: {{ .Values.greeting | quote }}
        """,
}


def test_helm_upgrade_install_list_and_uninstall_a_local_chart(
    real_kube_env: RealKube, real_tools: RealTools, tmp_path: Path
) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    real_kube = real_kube_env  # KUBECONFIG names it: helm and kubectl need no flag

    chart = tmp_path / "chart"
    for name, text in CHART.items():
        (chart / name).parent.mkdir(parents=True, exist_ok=True)
        (chart / name).write_text(textwrap.dedent(text))
    ns = _unique("helm")
    version = real_tools.run("helm", "version", "--short").stdout
    assert version.startswith("v3.")
    install = ("upgrade", "--install", "smoke", str(chart), "-n", ns, "--create-namespace")
    real_tools.run("helm", *install)
    real_tools.run("helm", *install, "--set", "greeting=bonjour")  # an upgrade: revision 2
    releases = json.loads(real_tools.run("helm", "list", "-n", ns, "-o", "json").stdout)
    assert [(r["name"], r["status"], r["revision"]) for r in releases] == [
        ("smoke", "deployed", "2")
    ]
    with real_kube.api_client() as api:
        core: Any = client.CoreV1Api(api)
        assert core.read_namespaced_config_map("smoke-config", ns).data == {"greeting": "bonjour"}
        got = real_tools.run("kubectl", "get", "configmap", "smoke-config", "-n", ns, "-o", "json")
        assert json.loads(got.stdout)["data"] == {"greeting": "bonjour"}
        real_tools.run("helm", "uninstall", "smoke", "-n", ns)
        assert json.loads(real_tools.run("helm", "list", "-n", ns, "-o", "json").stdout) == []
        with pytest.raises(ApiException) as gone:
            core.read_namespaced_config_map("smoke-config", ns)
        assert gone.value.status == 404
        core.delete_namespace(ns)


TERRAFORM = """\
    terraform {
      backend "s3" {}
    }

    variable "name" {
      type = string
    }

    locals {
      greeting = "hello ${var.name}"
    }

    resource "terraform_data" "marker" {
      input = local.greeting
    }

    output "greeting" {
      value = terraform_data.marker.output
    }

    output "id" {
      value = terraform_data.marker.id
    }
    """


def test_terraform_apply_output_destroy_with_the_s3_backend_on_moto(
    real_tools: RealTools, aws_env: str, tmp_path: Path
) -> None:
    import boto3

    bucket, key = _unique("tfstate"), "envplane/smoke.tfstate"
    s3 = boto3.client("s3", endpoint_url=aws_env)
    s3.create_bucket(Bucket=bucket)
    work = tmp_path / "tf"
    work.mkdir()
    (work / "main.tf").write_text(textwrap.dedent(TERRAFORM))
    (work / "backend.hcl").write_text(
        textwrap.dedent(
            f"""\
            bucket = "{bucket}"
            key = "{key}"
            region = "us-east-1"
            use_path_style = true
            use_lockfile = true
            skip_credentials_validation = true
            skip_requesting_account_id = true
            skip_metadata_api_check = true
            skip_region_validation = true
            endpoints = {{ s3 = "{aws_env}" }}
            """
        )
    )
    tf = ("terraform", "-chdir=" + str(work))
    assert real_tools.run("terraform", "version").stdout.startswith("Terraform v1.")
    real_tools.run(*tf, "init", "-input=false", "-backend-config=backend.hcl")
    real_tools.run(*tf, "validate")
    real_tools.run(*tf, "plan", "-input=false", "-var=name=sunday", "-out=tf.plan")
    real_tools.run(*tf, "apply", "-input=false", "-auto-approve", "tf.plan")
    outputs = json.loads(real_tools.run(*tf, "output", "-json").stdout)
    assert outputs["greeting"]["value"] == "hello sunday"
    assert outputs["id"]["value"]
    assert real_tools.run(*tf, "state", "list").stdout.split() == ["terraform_data.marker"]
    state = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert state["outputs"]["greeting"]["value"] == "hello sunday"
    assert [r["type"] for r in state["resources"]] == ["terraform_data"]
    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert listed == [key]  # the lock file (use_lockfile) is gone after the apply
    real_tools.run(*tf, "destroy", "-input=false", "-auto-approve", "-var=name=sunday")
    assert real_tools.run(*tf, "state", "list").stdout.split() == []
    state = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert state["resources"] == []
    assert not (work / "terraform.tfstate").exists()  # the state lives in S3, not here
