"""The Kubernetes API through the official client: server-side apply, reads, rollout waits,
namespace deletion, and copying ConfigMaps between namespaces (sync). Responses are read as
JSON (`_preload_content=False`) so objects stay plain dicts, as the renderer made them.

What the server serves is read from its version and discovery before anything is applied
(`check_served`): a kind with an older API version still served (PodDisruptionBudget in
policy/v1beta1 before Kubernetes 1.21) is reached through that version; anything else the
server lacks, or a server older than MIN_KUBERNETES, is a clear error. An apply that another
field manager's fields block is an `ApplyConflict` naming each field and its manager."""

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

# kind -> (API class, method suffix, namespaced): the objects envplane renders and reads.
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "ConfigMap": ("CoreV1Api", "namespaced_config_map", True),
    "Secret": ("CoreV1Api", "namespaced_secret", True),
    "Service": ("CoreV1Api", "namespaced_service", True),
    "Deployment": ("AppsV1Api", "namespaced_deployment", True),
    "PodDisruptionBudget": ("PolicyV1Api", "namespaced_pod_disruption_budget", True),
    "NetworkPolicy": ("NetworkingV1Api", "namespaced_network_policy", True),
    "Ingress": ("NetworkingV1Api", "namespaced_ingress", True),
    "Pod": ("CoreV1Api", "namespaced_pod", True),
    "Endpoints": ("CoreV1Api", "namespaced_endpoints", True),
}
# The API version each typed class above speaks, and the resource's plural.
TYPED: dict[str, tuple[str, str]] = {
    "Namespace": ("v1", "namespaces"),
    "ConfigMap": ("v1", "configmaps"),
    "Secret": ("v1", "secrets"),
    "Service": ("v1", "services"),
    "Pod": ("v1", "pods"),
    "Endpoints": ("v1", "endpoints"),
    "Deployment": ("apps/v1", "deployments"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "Ingress": ("networking.k8s.io/v1", "ingresses"),
}
# Older versions of the same object a server may serve instead, newest first. (The client
# has no typed class for them: they are reached by group, version and plural.)
ALTERNATIVES: dict[str, tuple[str, ...]] = {"PodDisruptionBudget": ("policy/v1", "policy/v1beta1")}
# networking.k8s.io/v1 Ingress is the newest API envplane needs without an alternative.
MIN_KUBERNETES = (1, 19)
PRUNABLE = ("NetworkPolicy", "ConfigMap", "Ingress", "Service", "Deployment", "PodDisruptionBudget")
SKIP_CONFIG_MAPS = ("kube-root-ca.crt",)  # made by Kubernetes in every namespace


def poll_interval() -> float:
    return float(os.environ.get(POLL_ENV) or 2.0)


class ApplyConflict(OperationFailed):
    """A server-side apply refused because other field managers own fields it sets."""

    def __init__(self, doing: str, conflicts: list[tuple[str, str]], namespace: str | None):
        self.conflicts = conflicts  # (field, manager)
        listed = "; ".join(f'{f} (managed by "{m}")' for f, m in conflicts)
        where = f" -n {namespace}" if namespace else ""
        super().__init__(
            f"{doing}: conflict: another field manager owns what envplane would set: {listed}",
            hint=(
                "someone changed it after envplane applied it (kubectl edit, another tool); "
                f"undo that change (kubectl{where} get ... --show-managed-fields shows who "
                "owns what), or let envplane take the fields over with "
                f"`kubectl{where} apply --server-side --force-conflicts --field-manager=envplane`"
            ),
        )


class KubeClient:
    def __init__(self, api: Any, progress: Callable[[str], None] = lambda _m: None) -> None:
        self.api = api
        self.progress = progress
        self._served: set[str] | None = None
        self._server: tuple[int, int, str] | None = None

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as exc:
            conflicts = _conflicts(exc) if exc.status == 409 else []
            if conflicts:
                raise ApplyConflict(doing, conflicts, self._namespace_of(doing)) from None
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

    @staticmethod
    def _namespace_of(doing: str) -> str | None:
        return doing.rsplit(" in ", 1)[1] if " in " in doing else None

    def _call(self, kind: str, verb: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        version = self.version_for(kind)
        if version == TYPED.get(kind, ("",))[0]:
            method, _ = self._method(kind, verb)
        else:
            method, args = self._generic(kind, version, verb, args)
        response = method(*args, _preload_content=False, **kwargs)
        data = response.data
        return dict(json.loads(data)) if data else {}

    def _generic(
        self, kind: str, version: str, verb: str, args: tuple[Any, ...]
    ) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        """A namespaced kind in an API version the client has no class for, by group, version
        and plural: (name, namespace[, body]) or (namespace) for a list."""
        from kubernetes import client

        group, ver = version.split("/")
        plural = TYPED[kind][1]
        verb = "get" if verb == "read" else verb
        method = getattr(client.CustomObjectsApi(self.api), f"{verb}_namespaced_custom_object")
        if verb == "list":
            return method, (group, ver, args[0], plural)
        name, namespace, *rest = args
        return method, (group, ver, namespace, plural, name, *rest)

    # --- what the server serves -----------------------------------------------------------

    def server_version(self) -> tuple[int, int, str]:
        """(major, minor, gitVersion) from /version (EKS says minor "31+")."""
        if self._server is None:
            from kubernetes import client

            versions: Any = client.VersionApi(self.api)  # untyped with _preload_content
            with self._errors("reading the server's version"):
                raw = versions.get_code(_preload_content=False).data
            info = json.loads(raw)
            major, minor = (
                int("".join(c for c in str(info.get(k, "0")) if c.isdigit()) or 0)
                for k in ("major", "minor")
            )
            self._server = (major, minor, str(info.get("gitVersion", f"v{major}.{minor}")))
        return self._server

    def served(self) -> set[str]:
        """Every group version the server serves (`v1`, `apps/v1`, ...), from discovery."""
        if self._served is None:
            from kubernetes import client

            core_api: Any = client.CoreApi(self.api)
            apis_api: Any = client.ApisApi(self.api)
            with self._errors("reading the server's API discovery"):
                core = json.loads(core_api.get_api_versions(_preload_content=False).data)
                groups = json.loads(apis_api.get_api_versions(_preload_content=False).data)
            found = set(core.get("versions", []))
            for group in groups.get("groups", []):
                found.update(str(v["groupVersion"]) for v in group.get("versions", []))
            self._served = found
        return self._served

    def version_for(self, kind: str) -> str:
        """The API version envplane speaks for `kind` on this server: the typed client's,
        or for a kind with ALTERNATIVES the newest the server serves."""
        choices = ALTERNATIVES.get(kind)
        if not choices:
            return TYPED.get(kind, ("",))[0]
        served = self.served()
        return next((v for v in choices if v in served), choices[0])

    def check_served(self, manifests: list[dict[str, Any]]) -> None:
        """Before anything is applied: the server is recent enough and serves an API version
        of every manifest's kind; else one error saying what it lacks."""
        major, minor, git = self.server_version()
        host = self.api.configuration.host
        if (major, minor) < MIN_KUBERNETES:
            raise OperationFailed(
                f"the Kubernetes API at {host} is {git}; envplane needs Kubernetes "
                f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or later",
                hint="upgrade the cluster (the rendered EKS cluster runs 1.31)",
            )
        served = self.served()
        missing: dict[str, list[str]] = {}
        for m in manifests:
            wanted = str(m.get("apiVersion", ""))
            choices = ALTERNATIVES.get(str(m["kind"]), (wanted,))
            if not any(v in served for v in choices):
                missing.setdefault(" or ".join(choices), []).append(
                    f"{m['kind']}/{m['metadata']['name']}"
                )
        if missing:
            lacks = "; ".join(f"{v} (for {', '.join(objs)})" for v, objs in missing.items())
            raise OperationFailed(
                f"the Kubernetes API at {host} ({git}) does not serve {lacks}; nothing was applied",
                hint="upgrade the cluster, or turn off what needs it in the matrix",
            )

    # --- objects --------------------------------------------------------------------------

    def apply(
        self,
        manifest: dict[str, Any],
        *,
        force: bool = True,
        manager: str = FIELD_MANAGER,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply (PATCH, application/apply-patch+yaml, fieldManager envplane). With
        `force` envplane takes over fields another manager set; without, those fields are an
        ApplyConflict naming them. `dry_run`: the object as it would be, nothing stored."""
        kind = str(manifest["kind"])
        meta = manifest["metadata"]
        _, namespaced = self._method(kind, "patch")
        args = [meta["name"], meta["namespace"]] if namespaced else [meta["name"]]
        version = self.version_for(kind)
        if version != manifest.get("apiVersion") and kind in ALTERNATIVES:
            manifest = {**manifest, "apiVersion": version}  # the same fields, served older
        where = f" in {meta['namespace']}" if namespaced else ""
        options: dict[str, Any] = {"field_manager": manager, "_content_type": APPLY}
        if force:
            options["force"] = True
        if dry_run:
            options["dry_run"] = "All"
        with self._errors(f"applying {kind}/{meta['name']}{where}"):
            return self._call(kind, "patch", *args, manifest, **options)

    def proxy_get(self, namespace: str, service: str, port: int, path: str) -> tuple[int, str]:
        """GET `path` on a Service through the API server's service proxy: (status, text);
        503 when the Service has no ready endpoint."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core: Any = client.CoreV1Api(self.api)
        with self._errors(f"reaching {service}:{port} in {namespace}"):
            try:
                answer = core.connect_get_namespaced_service_proxy_with_path(
                    f"{service}:{port}", namespace, path.lstrip("/"), _preload_content=False
                )
            except ApiException as exc:
                return int(exc.status or 0), _message(exc)  # a Status's message, else the body
        return int(answer.status), answer.data.decode(errors="replace")

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


def _conflicts(exc: Any) -> list[tuple[str, str]]:
    """(field, manager) of each FieldManagerConflict cause of a 409 Status."""
    try:
        causes = json.loads(exc.body).get("details", {}).get("causes", [])
    except (TypeError, ValueError, AttributeError):
        return []
    found = []
    for cause in causes:
        if cause.get("reason") != "FieldManagerConflict":
            continue
        message = str(cause.get("message", ""))
        manager = message.split('"')[1] if message.count('"') >= 2 else message
        found.append((str(cause.get("field", "")), manager))
    return found


def _message(exc: Any) -> str:
    try:
        return str(json.loads(exc.body).get("message", exc.body))
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or exc.reason)
