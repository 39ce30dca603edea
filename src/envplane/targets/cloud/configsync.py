"""Configuration reaching running pods on the cloud target: which of an environment's ConfigMaps
an apply changes, which Deployments read them, and restarting those as a rollout.

A Deployment reads a ConfigMap's keys at start (`envFrom`, `env.valueFrom`) and its mounted
files only after the kubelet's next sync, so a ConfigMap changed under a Deployment whose pod
template did not change would leave the running pods on the old configuration. `envplane
update` after a template change, and `envplane sync SRC DST --type config` (which is an update
of DST rendering SRC's config templates, data/sync.py), restart them the way `kubectl rollout
restart` does: one annotation on the pod template, so the Deployment rolls by its own strategy
(a rollout, not a delete: its readiness gates and maxUnavailable hold)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from envplane.targets.cloud.kube import KubeClient

# A field manager of its own: envplane's next full apply of the Deployment (manager
# "envplane", which never sets this annotation) leaves it in place instead of removing it,
# which would roll the pods a second time.
RESTART_MANAGER = "envplane-restart"
RESTARTED_AT = "envplane.io/restartedAt"


def config_maps_changed(
    kube: KubeClient, namespace: str, manifests: Iterable[Mapping[str, Any]]
) -> set[str]:
    """Names of the ConfigMaps among `manifests` whose data differs from what the namespace
    holds now (read before they are applied). A ConfigMap not there yet counts as changed
    only for Deployments that exist already (see `to_restart`)."""
    changed: set[str] = set()
    for m in manifests:
        if m.get("kind") != "ConfigMap":
            continue
        name = str(m["metadata"]["name"])
        live = kube.get("ConfigMap", name, namespace)
        if live is None or _content(live) != _content(m):
            changed.add(name)
    return changed


def _content(cm: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return dict(cm.get("data") or {}), dict(cm.get("binaryData") or {})


def reads(pod_spec: Mapping[str, Any]) -> set[str]:
    """Every ConfigMap a pod spec reads: volumes (also projected), envFrom, env valueFrom."""
    found: set[str] = set()
    for volume in pod_spec.get("volumes") or []:
        if volume.get("configMap"):
            found.add(str(volume["configMap"]["name"]))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if source.get("configMap"):
                found.add(str(source["configMap"]["name"]))
    for container in [*(pod_spec.get("containers") or []), *(pod_spec.get("initContainers") or [])]:
        for ref in container.get("envFrom") or []:
            if ref.get("configMapRef"):
                found.add(str(ref["configMapRef"]["name"]))
        for env in container.get("env") or []:
            key_ref = (env.get("valueFrom") or {}).get("configMapKeyRef")
            if key_ref:
                found.add(str(key_ref["name"]))
    return found


def to_restart(
    manifests: Iterable[Mapping[str, Any]], changed: set[str], existed: set[str]
) -> list[str]:
    """The Deployments (of those that existed before the apply) reading a changed ConfigMap;
    a Deployment made by this apply starts on the new configuration anyway."""
    names = []
    for m in manifests:
        if m.get("kind") != "Deployment" or str(m["metadata"]["name"]) not in existed:
            continue
        pod = (m.get("spec") or {}).get("template", {}).get("spec") or {}
        if reads(pod) & changed:
            names.append(str(m["metadata"]["name"]))
    return sorted(names)


def restart(kube: KubeClient, namespace: str, deployment: str, *, at: str | None = None) -> None:
    """`kubectl rollout restart`: a new pod-template annotation, applied by its own field
    manager; the Deployment then replaces its pods by its strategy."""
    stamp = at or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.apply(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": deployment, "namespace": namespace},
            "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}},
        },
        manager=RESTART_MANAGER,
    )
    kube.progress(f"{deployment}: restarted (its configuration changed)")
