"""A stand-in for the ingress-nginx controller's metrics, for a real Prometheus to scrape.

It plays the controller's part for one service's Ingress: every tick it "serves" a number of
requests and counts them in `nginx_ingress_controller_requests` and
`nginx_ingress_controller_request_duration_seconds_bucket` with the controller's labels
(namespace, ingress, service, status). Where each request goes is read from the fake
Kubernetes API as the controller would read it: the canary Ingress's
`nginx.ingress.kubernetes.io/canary-weight` splits it between the stable and canary Services,
and the version behind a Service (the image tag of the Deployment whose pods it selects)
decides whether it fails: `fail_share[version]` of its requests answer 500."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.kubeapi import FakeKube

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


@dataclass
class IngressTraffic:
    kube: FakeKube | None  # None: no controller traffic yet
    namespace: str
    service: str  # the matrix service, e.g. "backend"
    per_tick: int = 10  # requests every tick
    tick: float = 0.05
    latency: float = 0.02
    fail_share: dict[str, float] = field(default_factory=dict)
    counts: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    buckets: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    _owed: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _bad: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _server: ThreadingHTTPServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def start(self) -> IngressTraffic:
        traffic = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                data = traffic.metrics().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- what the controller sees in the API -----------------------------------------------

    def _obj(self, plural: str, name: str) -> dict[str, Any] | None:
        assert self.kube is not None
        with self.kube._lock:
            return self.kube.objects.get((plural, self.namespace, name))

    def _version_behind(self, service: str) -> str | None:
        svc = self._obj("services", service)
        if svc is None:
            return None
        selector = svc["spec"].get("selector", {})
        assert self.kube is not None
        with self.kube._lock:
            deployments = [
                o
                for (p, n, _), o in self.kube.objects.items()
                if p == "deployments" and n == self.namespace
            ]
        for dep in deployments:
            labels = dep["spec"]["template"]["metadata"]["labels"]
            if dep["spec"].get("replicas", 0) and all(
                labels.get(k) == v for k, v in selector.items()
            ):
                image = str(dep["spec"]["template"]["spec"]["containers"][0]["image"])
                return image.rpartition(":")[2]
        return None

    def _split(self) -> dict[str, float]:
        stable, canary = f"{self.service}-service", f"{self.service}-canary"
        ing = self._obj("ingresses", f"{self.service}-canary")
        weight = int((ing or {}).get("metadata", {}).get("annotations", {}).get(WEIGHT, 0))
        return {stable: (100 - weight) / 100.0, canary: weight / 100.0}

    # --- serving ---------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.wait(self.tick):
            if self.kube is None:
                continue
            split = self._split()
            with self._lock:
                for service, share in split.items():
                    self._owed[service] += self.per_tick * share
                    n = int(self._owed[service])
                    self._owed[service] -= n
                    if n == 0:
                        continue
                    version = self._version_behind(service)
                    if version is None:
                        continue  # no ready pod: the controller answers 503 itself
                    # Failures owed too: 30 % of one request a tick is a failure every few ticks.
                    self._bad[service] += n * self.fail_share.get(version, 0.0)
                    bad = min(n, int(self._bad[service]))
                    self._bad[service] -= bad
                    ingress = (
                        f"{self.service}-canary" if service.endswith("-canary") else self.service
                    )
                    self.counts[(ingress, service, 500)] += bad
                    self.counts[(ingress, service, 200)] += n - bad
                    counts = self.buckets.setdefault((ingress, service), [0] * (len(BUCKETS) + 1))
                    for i, le in enumerate(BUCKETS):
                        if self.latency <= le:
                            counts[i] += n
                    counts[-1] += n

    def metrics(self) -> str:
        lines = [
            "# TYPE nginx_ingress_controller_requests counter",
            "# TYPE nginx_ingress_controller_request_duration_seconds histogram",
        ]
        with self._lock:
            for service in (f"{self.service}-service", f"{self.service}-canary"):
                ingress = f"{self.service}-canary" if service.endswith("-canary") else self.service
                for status in (200, 500):  # every series from the start: increase() sees 0s
                    n = self.counts.get((ingress, service, status), 0)
                    lines.append(
                        f'nginx_ingress_controller_requests{{namespace="{self.namespace}",'
                        f'ingress="{ingress}",service="{service}",status="{status}"}} {n}'
                    )
                counts = self.buckets.get((ingress, service), [0] * (len(BUCKETS) + 1))
                labels = f'namespace="{self.namespace}",ingress="{ingress}",service="{service}"'
                for le, n in zip([*map(str, BUCKETS), "+Inf"], counts, strict=True):
                    lines.append(
                        "nginx_ingress_controller_request_duration_seconds_bucket"
                        f'{{{labels},le="{le}"}} {n}'
                    )
        return "\n".join(lines) + "\n"


def wait_until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.1)
