"""The Kubernetes API through the official client: server-side apply, reads, rollout waits,
namespace deletion, and copying ConfigMaps between namespaces (sync). Responses are read as
JSON (`_preload_content=False`) so objects stay plain dicts, as the renderer made them."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from envplane.errors import OperationFailed

FIELD_MANAGER = "envplane"
APPLY = "application/apply-patch+yaml"
POLL_ENV = "ENVPLANE_KUBE_POLL"  # seconds between status reads (tests make it small)

# kind -> (API class, method suffix, namespaced): the objects envplane renders.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map", True),
    "Secret": ("CoreV1Api", "namespaced_secret", True),
    "Service": ("CoreV1Api", "namespaced_service", True),
    "Deployment": ("AppsV1Api", "namespaced_deployment", True),
    "PodDisruptionBudget": ("PolicyV1Api", "namespaced_pod_disruption_budget", True),
    "NetworkPolicy": ("NetworkingV1Api", "namespaced_network_policy", True),
    "Ingress": ("NetworkingV1Api", "namespaced_ingress", True),
}
PRUNABLE = ("NetworkPolicy", "ConfigMap", "Ingress", "Service", "Deployment", "PodDisruptionBudget")
SKIP_CONFIG_MAPS = ("kube-root-ca.crt",)  # made by Kubernetes in every namespace


def poll_interval() -> float:
    return float(os.environ.get(POLL_ENV) or 2.0)


class KubeClient:
    def __init__(self, api: Any, progress: Callable[[str], None] = lambda _m: None) -> None:
        self.api = api
        self.progress = progress

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as exc:
            raise OperationFailed(f"{doing}: {exc.status} {exc.reason}: {_message(exc)}") from None
        except HTTPError as exc:
            host = self.api.configuration.host
            raise OperationFailed(
                f"{doing}: cannot reach the Kubernetes API at {host}: {exc}",
                hint="check the cluster is up and reachable (or ENVPLANE_KUBECONFIG)",
            ) from None

    def _method(self, kind: str, verb: str) -> tuple[Callable[..., Any], bool]:
        from kubernetes import client

        try:
            cls, suffix, namespaced = KINDS[kind]
        except KeyError:
            raise OperationFailed(f"envplane does not manage Kubernetes kind {kind!r}") from None
        return getattr(getattr(client, cls)(self.api), f"{verb}_{suffix}"), namespaced

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        method, _ = self._method(kind, verb)
        response = method(*args, _preload_content=False, **kwargs)
        data = response.data
        return dict(json.loads(data)) if data else {}

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (PATCH, application/apply-patch+yaml, fieldManager envplane, force)."""
        kind = str(manifest["kind"])
        meta = manifest["metadata"]
        _, namespaced = self._method(kind, "patch")
        args = [meta["name"], meta["namespace"]] if namespaced else [meta["name"]]
        with self._errors(f"applying {kind}/{meta['name']}"):
            return self._call(
                kind,
                "patch",
                *args,
                manifest,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type=APPLY,
            )

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        args = [name, namespace] if namespace else [name]
        with self._errors(f"reading {kind}/{name}"):
            try:
                return self._call(kind, "read", *args)
            except ApiException as exc:
                if exc.status == 404:
                    return None
                raise

    def list_objects(
        self, kind: str, namespace: str, selector: str | None = None
    ) -> list[dict[str, Any]]:
        kwargs = {"label_selector": selector} if selector else {}
        with self._errors(f"listing {kind} in {namespace}"):
            return list(self._call(kind, "list", namespace, **kwargs).get("items", []))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> bool:
        """True if it was there."""
        from kubernetes.client.exceptions import ApiException

        args = [name, namespace] if namespace else [name]
        with self._errors(f"deleting {kind}/{name}"):
            try:
                self._call(kind, "delete", *args)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    def prune(self, namespace: str, selector: str, keep: set[str]) -> list[str]:
        """Delete envplane's objects in the namespace that the environment no longer has."""
        gone: list[str] = []
        for kind in PRUNABLE:
            for obj in self.list_objects(kind, namespace, selector):
                key = f"{kind}/{obj['metadata']['name']}"
                if key not in keep and self.delete(kind, obj["metadata"]["name"], namespace):
                    self.progress(f"deleted {key} (no longer in the matrix)")
                    gone.append(key)
        return gone

    def wait_rollout(self, namespace: str, name: str, timeout: float) -> None:
        """Like `kubectl rollout status`: the new generation observed, every replica updated,
        ready and available, and no old replica left."""
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            dep = self.get("Deployment", name, namespace)
            if dep is None:
                raise OperationFailed(f"Deployment {name} vanished from {namespace}")
            done, state = rollout_state(dep)
            if state != last:
                self.progress(f"{name}: {state}")
                last = state
            if done:
                return
            for cond in dep.get("status", {}).get("conditions", []):
                if cond.get("reason") == "ProgressDeadlineExceeded":
                    raise OperationFailed(
                        f"Deployment {name} in {namespace} failed to progress: {state}",
                        hint=f"look at its pods: kubectl -n {namespace} describe deploy/{name}",
                    )
            if time.monotonic() > deadline:
                raise OperationFailed(
                    f"Deployment {name} in {namespace} not ready after {timeout:.0f}s: {state}",
                    hint=f"look at its pods: kubectl -n {namespace} describe deploy/{name}",
                )
            time.sleep(poll_interval())

    def delete_namespace(self, namespace: str, timeout: float) -> None:
        """The seed's `kubectl delete namespace`, then wait until it is really gone."""
        if not self.delete("Namespace", namespace):
            return
        deadline = time.monotonic() + timeout
        self.progress(f"waiting for namespace {namespace} to terminate")
        while self.get("Namespace", namespace) is not None:
            if time.monotonic() > deadline:
                raise OperationFailed(f"namespace {namespace} still terminating after {timeout}s")
            time.sleep(poll_interval())

    def copy_config_maps(self, src_ns: str, dst_ns: str) -> list[str]:
        """Every ConfigMap of src_ns applied into dst_ns (the seed's config sync)."""
        copied: list[str] = []
        for cm in self.list_objects("ConfigMap", src_ns):
            meta = cm["metadata"]
            if meta["name"] in SKIP_CONFIG_MAPS:
                continue
            copy: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": meta["name"], "namespace": dst_ns},
            }
            if meta.get("labels"):
                copy["metadata"]["labels"] = dict(meta["labels"])
            for key in ("data", "binaryData"):
                if cm.get(key):
                    copy[key] = dict(cm[key])
            self.apply(copy)
            copied.append(meta["name"])
        return copied


def rollout_state(dep: dict[str, Any]) -> tuple[bool, str]:
    spec, status = dep.get("spec", {}), dep.get("status", {})
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas", 0))
    updated = int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    total = int(status.get("replicas", 0))
    observed = int(status.get("observedGeneration", 0)) >= int(
        dep.get("metadata", {}).get("generation", 1)
    )
    done = observed and updated == desired and ready == desired and available == desired
    done = done and total == desired
    return done, f"{ready}/{desired} ready, {updated} updated"


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or exc.reason)
