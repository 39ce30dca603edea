"""desired_cloud: an environment as three resources the cloud driver applies in order.

    terraform/infrastructure  the *.tf.json files, the backend, the addresses Terraform manages
    kubernetes/workloads      the namespace's objects, applied server-side (depends on terraform)
    helm/monitoring           kube-prometheus-stack values (depends on kubernetes)

Pure: the same matrix, templates and settings give the same bytes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from envplane.matrix import Matrix
from envplane.render.cloud import helm
from envplane.render.cloud.checks import check_cloud
from envplane.render.cloud.kubernetes import object_name, render_kubernetes
from envplane.render.cloud.names import (
    CHART,
    CHART_REPO,
    CHART_VERSION,
    MONITORING_NAMESPACE,
    RELEASE,
    backend_config,
)
from envplane.render.cloud.notes import cloud_notes
from envplane.render.cloud.terraform import render_terraform
from envplane.render.cloud.workloads import APP_SECRET
from envplane.render.model import DesiredEnvironment, Resource

if TYPE_CHECKING:
    from envplane.render.model import Running

ROLLOUT_TIMEOUT = 600  # seconds a Deployment may take to become ready
# Where each key of the app Secret comes from: a `terraform output` naming a Secrets Manager
# secret, and the JSON field inside it (RDS stores {"username", "password"}).
SECRET_SOURCES: dict[str, dict[str, str]] = {
    "DATABASE_PASSWORD": {"output": "rds_master_secret_arn", "field": "password"},
    "REDIS_PASSWORD": {"output": "redis_auth_secret_arn"},
}


def desired_cloud(
    matrix: Matrix,
    env: str,
    *,
    template: str | None = None,
    environ: Mapping[str, str] | None = None,
    running: Mapping[str, Running] | None = None,
) -> DesiredEnvironment:
    """`running`: each service's version (its image tag) and color, as a release left them;
    None or a service it does not name: the matrix's initial version on blue."""
    check_cloud(matrix, env)
    e = matrix.environment(env)
    region = e.regions.primary
    tf = render_terraform(matrix, env)
    resources = [
        Resource(
            "terraform",
            "infrastructure",
            {
                "files": tf.files,
                "backend": backend_config(matrix.project, env, region, environ),
                "resources": tf.addresses,
                "outputs": tf.outputs,
                "region": region,
            },
        )
    ]
    secrets: list[str] = []
    if e.clusters:
        kube = render_kubernetes(matrix, env, template, running)
        deployments = [m["metadata"]["name"] for m in kube.manifests if m["kind"] == "Deployment"]
        spec: dict[str, Any] = {
            "namespace": kube.namespace,
            "manifests": kube.manifests,
            "objects": [object_name(m) for m in kube.manifests],
            "cluster": {"name": e.clusters[0].name, "region": region},
            "deployments": deployments,
            "rollout_timeout": ROLLOUT_TIMEOUT,
            "app_secret": {
                "name": APP_SECRET,
                "keys": {k: SECRET_SOURCES[k] for k in kube.secret_keys},
            },
        }
        resources.append(Resource("kubernetes", "workloads", spec, ("terraform/infrastructure",)))
        values = helm.monitoring_values(
            e.monitoring, project=matrix.project, env=env, ns=kube.namespace
        )
        if values is not None:
            monitoring: dict[str, Any] = {
                "release": RELEASE,
                "chart": CHART,
                "version": CHART_VERSION,
                "repo": {"name": CHART_REPO[0], "url": CHART_REPO[1]},
                "namespace": MONITORING_NAMESPACE,
                "values": values,
                "cluster": spec["cluster"],
            }
            if helm.grafana_on(e.monitoring):
                monitoring["admin_secret"] = {
                    "name": helm.GRAFANA_SECRET,
                    "secret": helm.GRAFANA_PASSWORD,
                }
                secrets.append(helm.GRAFANA_PASSWORD)
            resources.append(Resource("helm", "monitoring", monitoring, ("kubernetes/workloads",)))
    return DesiredEnvironment(
        name=env,
        project=matrix.project,
        target="cloud",
        resources=tuple(resources),
        notes=tuple(cloud_notes(matrix, env, replicated_storage=tf.replicated_storage)),
        secrets=tuple(secrets),
    )
