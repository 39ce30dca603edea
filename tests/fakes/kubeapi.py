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
pods are not ready."""

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
from urllib.parse import parse_qs, urlsplit

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
}
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
                proxied = PROXY.match(parts.path)
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
        if req.path == "/version":
            return 200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake"}
        match = PATH.match(req.path)
        if not match or match["plural"] not in KINDS:
            return _status(404, "NotFound", f"the server could not find {req.path}")
        plural, ns, name = match["plural"], match["ns"] or "", match["name"]
        if plural == "namespaces":
            ns = ""
        key = (plural, ns, name or "")
        if req.method == "GET" and name is None:
            return 200, self._list(plural, ns, req.query.get("labelSelector"))
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
        items = [
            copy.deepcopy(obj)
            for (p, n, _), obj in sorted(self.objects.items())
            if p == plural
            and (n == ns or plural == "namespaces")
            and all(obj["metadata"].get("labels", {}).get(k) == v for k, v in wanted.items())
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
            obj["status"].update(
                readyReplicas=n, updatedReplicas=n, availableReplicas=n, replicas=n
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
        obj = copy.deepcopy(body)
        self._version += 1
        obj["metadata"].update(
            uid=(old or {}).get("metadata", {}).get("uid", f"uid-{self._version}"),
            resourceVersion=str(self._version),
            creationTimestamp="2025-01-15T10:00:00Z",
        )
        generation = (old or {}).get("metadata", {}).get("generation", 0)
        changed = old is None or old.get("spec") != obj.get("spec")
        obj["metadata"]["generation"] = generation + 1 if changed else generation
        self._status_of(plural, obj, old if not changed else None)
        self.objects[key] = obj
        self.reads[key] = 0
        return (201 if old is None else 200), copy.deepcopy(obj)

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


def _status(code: int, reason: str, message: str) -> tuple[int, dict[str, Any]]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _not_found(key: tuple[str, str, str]) -> tuple[int, dict[str, Any]]:
    return _status(404, "NotFound", f'{key[0]} "{key[2]}" not found')


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
