"""A small fake of the Kubernetes API endpoints envplane uses, on 127.0.0.1, recording requests.

It behaves like an API server where the driver can tell: server-side apply needs
`application/apply-patch+yaml` and a fieldManager (415/422 otherwise); objects get uid,
resourceVersion, generation; Secrets' stringData becomes base64 data; namespaced objects need
their namespace; a Deployment reports ready only after `ready_after` reads; a deleted namespace
is Terminating for `terminating_reads` reads, then gone with everything in it; errors are
Status objects. `token` (or `token_check`) makes it demand a bearer token. The service proxy
(`/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`) answers for the Services a test put
in `proxies` ("NS/NAME:PORT" -> a base URL to forward GETs to, or a function of the path),
and 503 "no endpoints available" for the others, as an API server does for a Service whose
pods are not ready.

Like a real server it also reports a version (`version`) and discovery (`/api`, `/apis`: the
group versions in `served`; paths of others are 404); keeps who owns which field (per field
manager, lists atomic) so that an apply without `force` of a field another manager set to a
different value is a 409 Conflict with the real server's Status (`details.causes` naming
each field and manager), and an apply merges with the fields other managers own; and lists
Pods and Endpoints: each Deployment's `replicas` pods (`<deployment>-<i>`, its template's
labels, Running and Ready once the Deployment is), a pod in `unready_pods` (name -> reason)
not Ready (and not counted in its Deployment's readyReplicas), pods a test stored itself, and
a Service's Endpoints made from the Ready pods its selector matches, as the endpoints
controller does. An apply with `dryRun=All` answers the object as it would be and stores
nothing (neither the object nor who owns what); it reports no managedFields."""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fakes.kubestate import (
    META_KEYS,
    Path_,
    _at,
    _conflict,
    _field,
    _has,
    _leaves,
    _merge,
    _not_found,
    _put,
    _status,
    pod_object,
)

PATH = re.compile(
    r"^/(?:api/(?P<cv>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[a-z]+)(?:/(?P<name>[^/]+))?$"
)
KINDS = {
    "namespaces": "Namespace",
    "configmaps": "ConfigMap",
    "secrets": "Secret",
    "services": "Service",
    "deployments": "Deployment",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "networkpolicies": "NetworkPolicy",
    "ingresses": "Ingress",
    "pods": "Pod",
    "endpoints": "Endpoints",
}
# What a 1.31 API server serves of the groups envplane uses (policy/v1beta1 went in 1.25).
SERVED = frozenset({"v1", "apps/v1", "policy/v1", "networking.k8s.io/v1"})
PROXY = re.compile(
    r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?P<svc>[^/]+)/proxy(?P<rest>/.*)?$"
)
APPLY = "application/apply-patch+yaml"


@dataclass(frozen=True)
class Raw:
    """A proxied answer, passed through as it came."""

    body: bytes
    content_type: str


Proxy = str | Callable[[str], tuple[int, str]]  # a base URL, or path -> (status, text)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    authorization: str


@dataclass
class FakeKube:
    ready_after: int = 2
    terminating_reads: int = 1
    token: str | None = None
    token_check: Callable[[str], bool] | None = None
    requests: list[Request] = field(default_factory=list)
    proxies: dict[str, Proxy] = field(default_factory=dict)
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    reads: dict[tuple[str, str, str], int] = field(default_factory=dict)
    version: tuple[int, int] = (1, 31)
    served: frozenset[str] = SERVED
    unready_pods: dict[str, str] = field(default_factory=dict)  # pod name -> reason
    # object key -> field manager -> the leaf paths it owns
    owners: dict[tuple[str, str, str], dict[str, set[Path_]]] = field(default_factory=dict)
    _version: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeKube:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                body = json.loads(raw) if raw else None
                req = Request(
                    self.command,
                    parts.path,
                    query,
                    self.headers.get("Content-Type", ""),
                    body,
                    self.headers.get("Authorization", ""),
                )
                proxied = PROXY.match(unquote(parts.path))  # the client sends NAME%3APORT
                if proxied and fake._authorised(req.authorization):
                    with fake._lock:
                        fake.requests.append(req)
                    # Outside the lock: a proxied answer may take a while (a Prometheus query).
                    code, answer = fake.proxy(proxied, parts.query)
                else:
                    with fake._lock:
                        fake.requests.append(req)
                        code, answer = fake.handle(req)
                kind = "application/json"
                if isinstance(answer, Raw):
                    data, kind = answer.body, answer.content_type
                else:
                    data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what the API server does -----------------------------------------------------

    def calls(self, method: str | None = None, contains: str = "") -> list[Request]:
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and contains in r.path
        ]

    def handle(self, req: Request) -> tuple[int, dict[str, Any]]:
        if not self._authorised(req.authorization):
            return _status(401, "Unauthorized", "Unauthorized")
        if req.path.rstrip("/") == "/version":
            major, minor = self.version
            return 200, {
                "major": str(major),
                "minor": str(minor),
                "gitVersion": f"v{major}.{minor}.0-fake",
            }
        if req.path.rstrip("/") in ("/api", "/apis"):
            return 200, self._discovery(req.path.rstrip("/"))
        match = PATH.match(req.path)
        group_version = (match["cv"] or f"{match['group']}/{match['gv']}") if match else ""
        if not match or match["plural"] not in KINDS or group_version not in self.served:
            return _status(404, "NotFound", "the server could not find the requested resource")
        plural, ns, name = match["plural"], match["ns"] or "", match["name"]
        if plural == "namespaces":
            ns = ""
        key = (plural, ns, name or "")
        if req.method == "GET" and name is None:
            return 200, self._list(plural, ns, req.query.get("labelSelector"))
        if req.method == "GET" and plural in ("pods", "endpoints") and key not in self.objects:
            found = {o["metadata"]["name"]: o for o in self._derived(plural, ns)}.get(name or "")
            return (200, found) if found else _not_found(key)
        if req.method == "GET":
            return self._get(key)
        if req.method == "PATCH" and name:
            return self._apply(key, req)
        if req.method == "DELETE" and name:
            return self._delete(key)
        return _status(405, "MethodNotAllowed", f"{req.method} not allowed on {req.path}")

    def proxy(self, match: re.Match[str], query: str) -> tuple[int, dict[str, Any] | Raw]:
        target = self.proxies.get(f"{match['ns']}/{match['svc']}")
        rest = match["rest"] or "/"
        if target is None:
            name = match["svc"].split(":")[0]
            return _status(
                503, "ServiceUnavailable", f'no endpoints available for service "{name}"'
            )
        if not isinstance(target, str):
            code, text = target(rest)
            return code, Raw(text.encode(), "text/plain")
        url = target.rstrip("/") + rest + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:
                return answer.status, Raw(answer.read(), answer.headers["Content-Type"] or "")
        except urllib.error.HTTPError as exc:
            return exc.code, Raw(exc.read(), exc.headers["Content-Type"] or "")

    def _authorised(self, header: str) -> bool:
        if self.token is None and self.token_check is None:
            return True
        if not header.startswith("Bearer "):
            return False
        token = header.removeprefix("Bearer ")
        if self.token_check is not None:
            return self.token_check(token)
        return token == self.token

    def _list(self, plural: str, ns: str, selector: str | None) -> dict[str, Any]:
        wanted = dict(p.split("=", 1) for p in selector.split(",")) if selector else {}
        stored = [
            obj
            for (p, n, _), obj in sorted(self.objects.items())
            if p == plural and (n == ns or plural == "namespaces")
        ]
        names = {o["metadata"]["name"] for o in stored}
        derived = [o for o in self._derived(plural, ns) if o["metadata"]["name"] not in names]
        items = [
            copy.deepcopy(obj)
            for obj in stored + derived
            if all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
        ]
        kind = KINDS[plural]
        return {"kind": f"{kind}List", "apiVersion": "v1", "metadata": {}, "items": items}

    def _get(self, key: tuple[str, str, str]) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(key)
        if obj is None:
            return _not_found(key)
        self.reads[key] = self.reads.get(key, 0) + 1
        if key[0] == "deployments" and self.reads[key] >= self.ready_after:
            n = obj["spec"].get("replicas", 1)
            name = key[2]
            ready = n - sum(1 for i in range(n) if f"{name}-{i}" in self.unready_pods)
            obj["status"].update(
                readyReplicas=ready, updatedReplicas=n, availableReplicas=ready, replicas=n
            )
        terminating = key[0] == "namespaces" and obj["status"].get("phase") == "Terminating"
        if terminating and self.reads[key] > self.terminating_reads:
            del self.objects[key]
            for other in [k for k in self.objects if k[1] == key[2]]:
                del self.objects[other]
            return _not_found(key)
        return 200, copy.deepcopy(obj)

    def _apply(self, key: tuple[str, str, str], req: Request) -> tuple[int, dict[str, Any]]:
        plural, ns, name = key
        if req.content_type.split(";")[0].strip() != APPLY:
            return _status(415, "UnsupportedMediaType", f"unsupported {req.content_type}")
        if not req.query.get("fieldManager"):
            return _status(422, "Invalid", "fieldManager is required for apply patch")
        body = req.body or {}
        meta = body.get("metadata", {})
        if body.get("kind") != KINDS[plural] or meta.get("name") != name:
            return _status(400, "BadRequest", "the body does not match the URL")
        if ns and meta.get("namespace") != ns:
            return _status(400, "BadRequest", "the namespace of the body does not match the URL")
        if ns and ("namespaces", "", ns) not in self.objects:
            return _not_found(("namespaces", "", ns))
        old = self.objects.get(key)
        manager = req.query["fieldManager"]
        conflicts = self._conflicts(key, manager, body, old)
        if conflicts and req.query.get("force") != "true":
            return _conflict(conflicts, str(body.get("apiVersion", "")))
        dry = req.query.get("dryRun") == "All"  # the object as it would be; nothing stored
        owned_before = copy.deepcopy(self.owners.get(key))
        obj = self._merged(key, manager, body, old)
        if dry:
            self.owners.pop(key, None)
            if owned_before is not None:
                self.owners[key] = owned_before
            old = copy.deepcopy(old)
        version = self._version + 1
        if not dry:
            self._version = version
        obj["metadata"].update(
            uid=(old or {}).get("metadata", {}).get("uid", f"uid-{version}"),
            resourceVersion=str(version),
            creationTimestamp="2025-01-15T10:00:00Z",
        )
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != obj.get("spec")
        obj["metadata"]["generation"] = generation + 1 if changed else generation
        self._status_of(plural, obj, old if not changed else None)
        if dry:
            return (201 if old is None else 200), obj
        self.objects[key] = obj
        self.reads[key] = 0
        return (201 if old is None else 200), copy.deepcopy(obj)

    # --- field ownership (server-side apply) --------------------------------------------

    def _conflicts(
        self, key: tuple[str, str, str], manager: str, body: Any, old: dict[str, Any] | None
    ) -> list[tuple[str, Path_]]:
        """(other manager, path) for each field the body sets to a value another manager set
        differently (the same value is shared ownership, no conflict)."""
        if old is None:
            return []
        found = []
        for path, value in _leaves(body):
            if path[0] in ("apiVersion", "kind") or path[:2] in META_KEYS:
                continue
            for other, paths in sorted(self.owners.get(key, {}).items()):
                if other != manager and path in paths and _at(old, path) != value:
                    found.append((other, path))
        return found

    def _merged(
        self, key: tuple[str, str, str], manager: str, body: Any, old: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The body over what the other managers own of the old object (fields this manager
        owned before and no longer sets are dropped); ownership moves to this manager."""
        owners = self.owners.setdefault(key, {})
        applied = {path for path, _ in _leaves(body)}
        for other in [m for m in owners if m != manager]:
            owners[other] -= applied  # forced, or the same value: this manager has it now
            if not owners[other]:
                del owners[other]
        owners[manager] = applied
        obj: dict[str, Any] = {}
        for other, paths in owners.items():
            if other == manager or old is None:
                continue
            for path in paths:
                if _has(old, path):
                    _put(obj, path, copy.deepcopy(_at(old, path)))
        _merge(obj, copy.deepcopy(body))
        return obj

    def owned(self, plural: str, ns: str, name: str) -> dict[str, list[str]]:
        """Field manager -> the fields it owns (as the real server names them)."""
        return {
            m: sorted(_field(p) for p in paths)
            for m, paths in self.owners.get((plural, ns, name), {}).items()
        }

    # --- discovery, pods and endpoints ----------------------------------------------------

    def _discovery(self, path: str) -> dict[str, Any]:
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"] if "v1" in self.served else []}
        groups: dict[str, list[str]] = {}
        for gv in sorted(self.served):
            if "/" in gv:
                group, version = gv.split("/")
                groups.setdefault(group, []).append(version)
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": g,
                    "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                    "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                }
                for g, vs in sorted(groups.items())
            ],
        }

    def _derived(self, plural: str, ns: str) -> list[dict[str, Any]]:
        if plural == "pods":
            return self._pods(ns)
        if plural == "endpoints":
            return [
                self._endpoints(ns, svc)
                for (p, n, _), svc in self.objects.items()
                if p == "services" and n == ns
            ]
        return []

    def _pods(self, ns: str) -> list[dict[str, Any]]:
        """Each Deployment's replicas as its ReplicaSet would make them, and the pods a test
        stored itself."""
        pods = [
            copy.deepcopy(o)
            for (p, n, _), o in sorted(self.objects.items())
            if p == "pods" and n == ns
        ]
        for (p, n, name), dep in sorted(self.objects.items()):
            if p != "deployments" or n != ns:
                continue
            ready = int(dep.get("status", {}).get("updatedReplicas", 0)) > 0
            template = dep["spec"].get("template", {})
            for i in range(int(dep["spec"].get("replicas", 1))):
                pod = f"{name}-{i}"
                reason = self.unready_pods.get(pod)
                pods.append(
                    pod_object(
                        ns,
                        pod,
                        dict(template.get("metadata", {}).get("labels", {})),
                        ready=ready and reason is None,
                        reason=reason or ("" if ready else "ContainersNotReady"),
                        ip=f"10.0.{i}.{len(pods) + 10}",
                    )
                )
        return pods

    def _endpoints(self, ns: str, svc: dict[str, Any]) -> dict[str, Any]:
        name = svc["metadata"]["name"]
        selector = svc.get("spec", {}).get("selector") or {}
        ready: list[dict[str, Any]] = []
        not_ready: list[dict[str, Any]] = []
        for pod in self._pods(ns) if selector else []:
            labels = pod["metadata"].get("labels", {})
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            address = {
                "ip": pod["status"].get("podIP", ""),
                "targetRef": {"kind": "Pod", "name": pod["metadata"]["name"], "namespace": ns},
            }
            conditions = pod["status"].get("conditions", [])
            is_ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
            (ready if is_ready else not_ready).append(address)
        ports = [
            {"port": p.get("targetPort", p.get("port")), "protocol": "TCP"}
            for p in svc.get("spec", {}).get("ports", [])
        ]
        subset: dict[str, Any] = {"ports": ports}
        if ready:
            subset["addresses"] = ready
        if not_ready:
            subset["notReadyAddresses"] = not_ready
        return {
            "kind": "Endpoints",
            "apiVersion": "v1",
            "metadata": {"name": name, "namespace": ns},
            "subsets": [subset] if ready or not_ready else [],
        }

    def _status_of(self, plural: str, obj: dict[str, Any], kept: dict[str, Any] | None) -> None:
        if plural == "secrets" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        if plural == "namespaces":
            obj["status"] = {"phase": "Active"}
        if plural == "deployments":
            obj["status"] = (kept or {}).get("status") or {
                "observedGeneration": obj["metadata"]["generation"],
                "replicas": 0,
            }
            obj["status"]["observedGeneration"] = obj["metadata"]["generation"]
        if plural == "services":
            status: dict[str, Any] = {"loadBalancer": {}}
            if obj["spec"].get("type") == "LoadBalancer":
                host = f"{obj['metadata']['name']}-0123456789.us-east-1.elb.amazonaws.com"
                status["loadBalancer"] = {"ingress": [{"hostname": host}]}
            obj["status"] = status

    def _delete(self, key: tuple[str, str, str]) -> tuple[int, dict[str, Any]]:
        obj = self.objects.get(key)
        if obj is None:
            return _not_found(key)
        if key[0] == "namespaces":
            obj["status"]["phase"] = "Terminating"
            obj["metadata"]["deletionTimestamp"] = "2025-01-15T10:05:00Z"
            self.reads[key] = 0
            return 200, copy.deepcopy(obj)
        del self.objects[key]
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}


def kubeconfig(url: str, token: str = "fake-token") -> str:
    """A kubeconfig naming the fake (context `fake`)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": url}}],
            "users": [{"name": "fake", "user": {"token": token}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
    )
