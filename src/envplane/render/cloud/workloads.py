"""Kubernetes Deployments, Services and PodDisruptionBudgets for the environment's services.

Each matrix service becomes `<name>-service` (port 80, as the seed's
`http://backend-service:80`) and the Deployments of its delivery strategy (tracks.py; rolling
and recreate: `<name>-deployment`). When the config templates carry a frontend-config with an
nginx.conf (the seed's), an nginx `frontend` serves it behind a LoadBalancer Service, as the
local target's proxy does. Secrets reach containers only as Secret references."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from envplane.errors import BadInput
from envplane.matrix.models import SecretRef
from envplane.render.cloud.names import labels

CONFIG_ROOT = "/etc/envplane/config"
APP_SECRET = "app-secrets"  # noqa: S105 - the Secret's name; the driver fills it from AWS


@dataclass(frozen=True)
class Workload:
    name: str  # DNS label, e.g. "backend"
    image: str
    port: int
    replicas: int
    health_path: str
    metrics_path: str | None  # None: not scraped
    env: dict[str, str | SecretRef]  # a SecretRef is refused (not supported here yet)
    secret_env: tuple[str, ...] = ()  # keys of the app Secret this container reads
    cpu: str | None = None
    memory: str | None = None
    public: bool = False  # a LoadBalancer Service instead of ClusterIP
    mounts: dict[str, str] = field(default_factory=dict)  # ConfigMap name -> mount path
    files: dict[str, tuple[str, str]] = field(default_factory=dict)  # path -> (ConfigMap, key)
    capabilities: tuple[str, ...] = ()  # added back after dropping ALL (nginx needs a few)
    version: str | None = None  # a matrix service's version (its image tag); None: frontend
    color: str = "blue"  # the color it runs on (blue-green's live Deployment)


def selector(ns: str, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": ns}


def _probe(w: Workload, initial: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": w.health_path, "port": "http"},
        "initialDelaySeconds": initial,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": 3,
    }


def _plain_env(w: Workload, env_name: str) -> list[dict[str, Any]]:
    """The container's literal env. A `{secret: NAME}` (a secret of envplane's state store)
    has no counterpart here yet: the driver fills Secrets only from AWS Secrets Manager, so
    it is refused (exit 2) rather than rendered as its name or dropped."""
    refs = sorted((k, v.secret) for k, v in w.env.items() if isinstance(v, SecretRef))
    if refs:
        key, name = refs[0]
        raise BadInput(
            f"environment {env_name!r}: services.{w.name}.env.{key}: "
            f"{{secret: {name}}} is not supported on the cloud target yet",
            hint="create the environment on the local target, or give the container the "
            "value another way (the cloud target's app Secret comes from AWS Secrets Manager)",
        )
    return [{"name": k, "value": v} for k, v in sorted(w.env.items()) if isinstance(v, str)]


def _container(w: Workload, env_from: list[str], env_name: str) -> dict[str, Any]:
    env = _plain_env(w, env_name)
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": APP_SECRET, "key": key}}}
        for key in w.secret_env
    ]
    container: dict[str, Any] = {
        "name": w.name,
        "image": w.image,
        "ports": [{"name": "http", "containerPort": w.port, "protocol": "TCP"}],
        "env": env,
        "readinessProbe": _probe(w, 5, 10),
        "livenessProbe": _probe(w, 15, 20),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {
                "drop": ["ALL"],
                **({"add": list(w.capabilities)} if w.capabilities else {}),
            },
        },
    }
    if env_from:
        container["envFrom"] = [{"configMapRef": {"name": n}} for n in env_from]
    resources: dict[str, dict[str, str]] = {}
    if w.cpu:
        resources.setdefault("requests", {})["cpu"] = w.cpu
    if w.memory:
        resources.setdefault("requests", {})["memory"] = w.memory
        resources["limits"] = {"memory": w.memory}
    if resources:
        container["resources"] = resources
    mounts = [
        {"name": _volume(cm), "mountPath": path, "readOnly": True}
        for cm, path in sorted(w.mounts.items())
    ]
    mounts += [
        {"name": _volume(cm), "mountPath": path, "subPath": key, "readOnly": True}
        for path, (cm, key) in sorted(w.files.items())
    ]
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _volume(config_map: str) -> str:
    return f"cm-{config_map}"[:63].rstrip("-")


def deployment(
    ns: str,
    w: Workload,
    *,
    project: str,
    env: str,
    recreate: bool,
    env_from: list[str],
    name: str | None = None,
    replicas: int | None = None,
    track: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`name`, `replicas` and `track` (a color or canary label, in the selector too) are a
    delivery strategy's: one of several Deployments of the same service (tracks.py)."""
    sel = {**selector(ns, w.name), **(track or {})}
    pod_labels = {**labels(project, env, w.name), **sel}
    annotations: dict[str, str] = {}
    if w.metrics_path:
        annotations = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(w.port),
            "prometheus.io/path": w.metrics_path,
        }
    config_maps = sorted({*w.mounts, *(cm for cm, _key in w.files.values())})
    strategy: dict[str, Any] = (
        {"type": "Recreate"}
        if recreate
        else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    )
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [_container(w, env_from, env)],
    }
    if config_maps:
        pod["volumes"] = [{"name": _volume(cm), "configMap": {"name": cm}} for cm in config_maps]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name or f"{w.name}-deployment",
            "namespace": ns,
            "labels": {**labels(project, env, w.name), **(track or {})},
        },
        "spec": {
            "replicas": w.replicas if replicas is None else replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": sel},
            "strategy": strategy,
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    **({"annotations": annotations} if annotations else {}),
                },
                "spec": pod,
            },
        },
    }


def service(
    ns: str,
    w: Workload,
    *,
    project: str,
    env: str,
    name: str | None = None,
    track: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`track` narrows the selector to one color or canary track (tracks.py)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name or f"{w.name}-service",
            "namespace": ns,
            "labels": labels(project, env, w.name),
        },
        "spec": {
            "type": "LoadBalancer" if w.public else "ClusterIP",
            "selector": {**selector(ns, w.name), **(track or {})},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def disruption_budget(ns: str, w: Workload, *, project: str, env: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": f"{w.name}-pdb",
            "namespace": ns,
            "labels": labels(project, env, w.name),
        },
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(ns, w.name)}},
    }
