"""The kubernetes/workloads resource: fill the `${tf:...}` placeholders from Terraform's
outputs, check the server serves every object's API version, create the app Secret from
Secrets Manager, server-side apply every object, prune what the matrix dropped, restart the
Deployments whose ConfigMaps changed (configsync.py), and wait for each Deployment's rollout.

ConfigMaps are applied without `force`: a value someone changed in the cluster by hand
(another field manager) is an error naming the field and the manager rather than silently
overwritten; every other object is envplane's and is taken back as the matrix says."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.cloud.names import PLACEHOLDER_RE, labels
from envplane.targets.base import EnvContext, Observed, ServiceStatus
from envplane.targets.cloud import aws, configsync, infra
from envplane.targets.cloud.kube import KubeClient, rollout_state
from envplane.targets.cloud.kubeconn import Connection, connect, user_kubeconfig

NAMESPACE_TIMEOUT = 600.0


def connection(ctx: EnvContext, spec: Mapping[str, Any]) -> Connection:
    cluster = spec["cluster"]
    return connect(str(cluster["name"]), str(cluster["region"]), ctx.env_dir / "kube")


def client(ctx: EnvContext, spec: Mapping[str, Any]) -> KubeClient:
    return KubeClient(connection(ctx, spec).api, ctx.progress)


def placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(PLACEHOLDER_RE.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    return set()


def resolve(value: Any, outputs: Mapping[str, Any]) -> Any:
    """A copy of `value` with every `${tf:NAME}` replaced by that Terraform output."""
    missing = sorted(n for n in placeholders(value) if outputs.get(n) in (None, ""))
    if missing:
        raise OperationFailed(
            f"Terraform outputs {', '.join(missing)} are missing; the manifests need them",
            hint="the infrastructure step creates them: `envplane resume` or `envplane update`",
        )

    def fill(v: Any) -> Any:
        if isinstance(v, str):
            return PLACEHOLDER_RE.sub(lambda m: str(outputs[m.group(1)]), v)
        if isinstance(v, Mapping):
            return {k: fill(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fill(x) for x in v]
        return v

    return fill(copy.deepcopy(value))


def _app_secret(
    ctx: EnvContext, spec: Mapping[str, Any], outputs: Mapping[str, Any]
) -> dict[str, Any] | None:
    source = spec.get("app_secret") or {}
    keys: Mapping[str, Mapping[str, str]] = source.get("keys") or {}
    if not keys:
        return None
    region = str(spec["cluster"]["region"])
    values: dict[str, str] = {}
    for key, origin in sorted(keys.items()):
        arn = outputs.get(origin["output"])
        if not arn:
            raise OperationFailed(f"Terraform output {origin['output']} is missing ({key})")
        values[key] = aws.secret_value(region, str(arn), origin.get("field"))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": source["name"],
            "namespace": spec["namespace"],
            "labels": labels(ctx.project, ctx.name),
        },
        "type": "Opaque",
        "stringData": values,
    }


def selector(ctx: EnvContext) -> str:
    return f"app.kubernetes.io/managed-by=envplane,envplane.io/environment={ctx.name}"


def apply(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    manifests: list[dict[str, Any]] = list(spec["manifests"])
    needed = placeholders(manifests) or bool((spec.get("app_secret") or {}).get("keys"))
    outputs = infra.outputs(ctx) if needed else {}
    manifests = resolve(manifests, outputs)
    kube = client(ctx, spec)
    ns = str(spec["namespace"])
    kube.check_served(manifests)  # before anything is applied
    changed = configsync.config_maps_changed(kube, ns, manifests)
    existed = {
        str(m["metadata"]["name"])
        for m in manifests
        if changed
        and m["kind"] == "Deployment"
        and kube.get("Deployment", m["metadata"]["name"], ns)
    }
    namespace = [m for m in manifests if m["kind"] == "Namespace"]
    for manifest in namespace:
        kube.apply(manifest)
    secret = _app_secret(ctx, spec, outputs)
    if secret is not None:
        kube.apply(secret)  # before the Deployments that read it
    ctx.progress(f"applying {len(manifests)} objects to namespace {ns} (server-side)")
    for manifest in manifests:
        if manifest["kind"] != "Namespace":
            kube.apply(manifest, force=manifest["kind"] != "ConfigMap")
    kube.prune(ns, selector(ctx), set(spec.get("objects", [])))
    for name in configsync.to_restart(manifests, changed, existed):
        configsync.restart(kube, ns, name)
    for name in spec.get("deployments", []):
        kube.wait_rollout(ns, str(name), float(spec.get("rollout_timeout", 600)))


def observe(ctx: EnvContext, spec: Mapping[str, Any]) -> Observed:
    kube = client(ctx, spec)
    ns = str(spec["namespace"])
    if kube.get("Namespace", ns) is None:
        return Observed(False, False, f"namespace {ns} does not exist")
    missing, unready = [], []
    for name in spec.get("deployments", []):
        dep = kube.get("Deployment", str(name), ns)
        if dep is None:
            missing.append(str(name))
        elif not rollout_state(dep)[0]:
            unready.append(f"{name} {rollout_state(dep)[1]}")
    # A ConfigMap deleted by hand is drift `update` (and a config sync) must repair: one list.
    present = {c["metadata"]["name"] for c in kube.list_objects("ConfigMap", ns, selector(ctx))}
    missing += [
        f"ConfigMap/{m['metadata']['name']}"
        for m in spec.get("manifests", [])
        if m.get("kind") == "ConfigMap" and m["metadata"]["name"] not in present
    ]
    if missing:
        return Observed(True, False, f"missing: {', '.join(missing)}")
    return Observed(True, not unready, "; ".join(unready))


def cluster_gone(ctx: EnvContext, spec: Mapping[str, Any]) -> bool:
    """True when the environment's EKS cluster no longer exists (what ran on it went with it);
    never for a user-chosen kubeconfig."""
    cluster = spec["cluster"]
    if user_kubeconfig() is not None:
        return False
    if aws.eks_cluster(str(cluster["region"]), str(cluster["name"])) is not None:
        return False
    ctx.progress(f"EKS cluster {cluster['name']} is gone, and what ran on it with it")
    return True


def delete(ctx: EnvContext, spec: Mapping[str, Any]) -> None:
    if not cluster_gone(ctx, spec):
        client(ctx, spec).delete_namespace(str(spec["namespace"]), NAMESPACE_TIMEOUT)


SERVICE_LABEL = "app.kubernetes.io/name"  # set on every Deployment render/cloud writes


def services(ctx: EnvContext, spec: Mapping[str, Any]) -> list[ServiceStatus]:
    """Each service's ready/desired, as the seed's `get_environment_info` reports them: the
    sum over its Deployments (blue-green's two colors, a canary's two tracks)."""
    kube = client(ctx, spec)
    ns = str(spec["namespace"])
    service_of = {
        str(m["metadata"]["name"]): str(m["metadata"].get("labels", {}).get(SERVICE_LABEL, ""))
        for m in spec.get("manifests", [])
        if m.get("kind") == "Deployment"
    }
    counts: dict[str, tuple[int, int]] = {}
    for name in spec.get("deployments", []):
        dep = kube.get("Deployment", str(name), ns) or {}
        desired = int(dep.get("spec", {}).get("replicas", 0))
        ready = int(dep.get("status", {}).get("readyReplicas", 0))
        service = service_of.get(str(name)) or str(name).removesuffix("-deployment")
        was_ready, was_desired = counts.get(service, (0, 0))
        counts[service] = (was_ready + ready, was_desired + desired)
    return [ServiceStatus(name, ready, desired) for name, (ready, desired) in counts.items()]


def public_address(ctx: EnvContext, spec: Mapping[str, Any]) -> str | None:
    """The LoadBalancer hostname of the public Service, once AWS assigned one."""
    kube = client(ctx, spec)
    ns = str(spec["namespace"])
    for manifest in spec["manifests"]:
        if manifest["kind"] == "Service" and manifest["spec"].get("type") == "LoadBalancer":
            svc = kube.get("Service", manifest["metadata"]["name"], ns) or {}
            for ingress in svc.get("status", {}).get("loadBalancer", {}).get("ingress", []):
                host = ingress.get("hostname") or ingress.get("ip")
                if host:
                    return str(host)
    return None
