"""The helm/monitoring resource: kube-prometheus-stack in the `monitoring` namespace, with
Grafana's admin password in a Secret made from envplane's own (encrypted) secret store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from envplane.render.cloud.names import labels
from envplane.render.cloud.write import dump_yaml, write_text
from envplane.targets.base import EnvContext, Observed
from envplane.targets.cloud import apps
from envplane.targets.cloud.helm import Helm
from envplane.targets.cloud.kube import KubeClient

NAMESPACE_TIMEOUT = 600.0


def _namespace(ctx: EnvContext, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels(ctx.project, ctx.name)},
    }


def apply(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    conn = apps.connection(ctx, spec)
    kube = KubeClient(conn.api, ctx.progress)
    ns = str(spec["namespace"])
    kube.apply(_namespace(ctx, ns))
    admin = spec.get("admin_secret")
    if admin:
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": admin["name"],
                    "namespace": ns,
                    "labels": labels(ctx.project, ctx.name),
                },
                "type": "Opaque",
                "stringData": {
                    "admin-user": "admin",
                    "admin-password": ctx.secret(admin["secret"]),
                },
            }
        )
    values = ctx.env_dir / "helm" / "values-monitoring.yaml"
    write_text(values, dump_yaml(spec["values"]), mode=0o600)
    helm = Helm(ctx.progress, conn.helm_env())
    helm.repo_add(spec["repo"]["name"], spec["repo"]["url"])
    helm.upgrade_install(
        str(spec["release"]),
        str(spec["chart"]),
        version=str(spec["version"]),
        namespace=ns,
        values=values,
    )


def observe(ctx: EnvContext, spec: Mapping[str, Any]) -> Observed:
    conn = apps.connection(ctx, spec)
    status = Helm(ctx.progress, conn.helm_env()).status(
        str(spec["release"]), str(spec["namespace"])
    )
    if status is None:
        return Observed(False, False, f"release {spec['release']} is not installed")
    state = str((status.get("info") or {}).get("status", "unknown"))
    return Observed(True, state == "deployed", f"release {spec['release']} is {state}")


def delete(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    if apps.cluster_gone(ctx, spec):
        return
    conn = apps.connection(ctx, spec)
    ns = str(spec["namespace"])
    Helm(ctx.progress, conn.helm_env()).uninstall(str(spec["release"]), ns)
    kube = KubeClient(conn.api, ctx.progress)
    found = kube.get("Namespace", ns)
    mine = (found or {}).get("metadata", {}).get("labels", {}).get("envplane.io/environment")
    if mine == ctx.name:  # a namespace someone else made stays
        kube.delete_namespace(ns, NAMESPACE_TIMEOUT)
