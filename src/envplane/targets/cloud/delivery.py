"""CloudDelivery: the moves of a rollout on a cloud environment, one at a time, through the
Kubernetes API (server-side apply, as `envplane create` applies), and the Prometheus source the
rollout's traffic analysis reads. envplane.delivery.cloud_rollout decides their order.

Every object a move applies is the full manifest the renderer made (render/cloud/tracks.py),
only its replica count changed: a server-side apply of part of an object would give up the
fields left out, so scaling is never a partial patch. `${tf:...}` placeholders are filled from
Terraform's outputs, read once per rollout and only when a manifest needs them.

The API server's service proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/...`) reaches
both the preview Service (blue-green's smoke check) and kube-prometheus-stack's Prometheus, with
the credentials of the Kubernetes connection; ENVPLANE_PROMETHEUS_URL names another Prometheus
(a port-forward, a managed one) instead.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from envplane.errors import OperationFailed
from envplane.render.cloud.names import MONITORING_NAMESPACE, RELEASE, k8s_name
from envplane.render.cloud.tracks import names
from envplane.targets.base import EnvContext
from envplane.targets.cloud import apps, infra
from envplane.targets.cloud.kube import KubeClient
from envplane.targets.cloud.kubeconn import Connection

PROMETHEUS_URL_ENV = "ENVPLANE_PROMETHEUS_URL"
PROMETHEUS_PORT = 9090
HTTP_TIMEOUT = 10.0
REQUESTS = "nginx_ingress_controller_requests"
DURATION = "nginx_ingress_controller_request_duration_seconds_bucket"


@dataclass(frozen=True)
class Traffic:
    """One Service's requests over a window, as Prometheus counted them."""

    requests: int
    failures: int
    p99_seconds: float | None  # None: no request, or no latency recorded


def prometheus_service(release: str = RELEASE) -> str:
    """kube-prometheus-stack's Prometheus Service: its fullname (the release, with the chart's
    name unless the release holds it, cut at 26 characters) + `-prometheus`."""
    chart = "kube-prometheus-stack"
    full = release if chart in release else f"{release}-{chart}"
    return f"{full[:26].rstrip('-')}-prometheus"


class PrometheusSource:
    """Requests, failures and p99 of one Service's traffic through ingress-nginx, from the
    Prometheus HTTP API (`/api/v1/query`), over the `seconds` before `at`."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url.rstrip("/")
        self.client = client

    def query(self, promql: str, at: float) -> float | None:
        """The single value of an instant query; None for an empty result or NaN."""
        try:
            response = self.client.get(
                f"{self.url}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}
            )
        except httpx.HTTPError as exc:
            raise OperationFailed(f"cannot reach Prometheus at {self.url}: {exc}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or body.get("status") != "success":
            why = body.get("error") or response.text[:200]
            raise OperationFailed(
                f"Prometheus at {self.url} refused the query ({response.status_code}): {why}"
            )
        result = body.get("data", {}).get("result", [])
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def traffic(self, namespace: str, service: str, seconds: float, at: float) -> Traffic:
        sel = f'namespace="{namespace}",service="{service}"'
        window = f"{max(1, round(seconds * 1000))}ms"
        total = self.query(f"sum(increase({REQUESTS}{{{sel}}}[{window}]))", at) or 0.0
        failed = (
            self.query(f'sum(increase({REQUESTS}{{{sel},status=~"5.."}}[{window}]))', at) or 0.0
        )
        p99 = self.query(
            f"histogram_quantile(0.99, sum by (le) (increase({DURATION}{{{sel}}}[{window}])))", at
        )
        # increase() extrapolates to the window's edges: counts come back fractional.
        requests = round(total)
        return Traffic(requests, min(round(failed), requests), p99 if requests else None)


class CloudDelivery:
    """The moves on one environment's Kubernetes objects; `attach` names the environment's
    kubernetes/workloads spec (its namespace, cluster and rendered manifests) first."""

    def __init__(self, outputs: Callable[[EnvContext], Mapping[str, Any]] | None = None) -> None:
        self._read_outputs = outputs or infra.outputs
        self._spec: Mapping[str, Any] = {}
        self._conn: Connection | None = None
        self._outputs: Mapping[str, Any] | None = None

    def attach(self, spec: Mapping[str, Any]) -> None:
        self._spec = spec

    @property
    def namespace(self) -> str:
        if "namespace" not in self._spec:
            raise OperationFailed(
                "the cloud delivery driver was not given the environment's kubernetes/workloads "
                "spec (CloudDelivery.attach)",
                hint="this is a bug in envplane: report it with the command that ran",
            )
        return str(self._spec["namespace"])

    def connection(self, ctx: EnvContext) -> Connection:
        if self._conn is None:
            self.namespace  # noqa: B018 - refuses an unattached driver with a clear error
            self._conn = apps.connection(ctx, self._spec)
        return self._conn

    def kube(self, ctx: EnvContext) -> KubeClient:
        return KubeClient(self.connection(ctx).api, ctx.progress)

    def _filled(self, ctx: EnvContext, manifest: Mapping[str, Any]) -> dict[str, Any]:
        if not apps.placeholders(manifest):
            return copy.deepcopy(dict(manifest))
        if self._outputs is None:
            self._outputs = self._read_outputs(ctx)
        filled: dict[str, Any] = apps.resolve(dict(manifest), self._outputs)
        return filled

    # --- moves ----------------------------------------------------------------------------

    def deploy(self, ctx: EnvContext, manifest: Mapping[str, Any], replicas: int) -> None:
        """Apply a Deployment as rendered, at `replicas` (its image is the version's tag)."""
        obj = self._filled(ctx, manifest)
        obj["spec"]["replicas"] = replicas
        self.kube(ctx).apply(obj)

    def wait_ready(self, ctx: EnvContext, name: str) -> float:
        """Until every replica of Deployment `name` is updated and ready; the seconds it took."""
        started = time.monotonic()
        timeout = float(self._spec.get("rollout_timeout", 600))
        self.kube(ctx).wait_rollout(self.namespace, name, timeout)
        return time.monotonic() - started

    def apply(self, ctx: EnvContext, manifest: Mapping[str, Any]) -> None:
        """A Service (its selector: the switch) or an Ingress (its canary weight), as given."""
        self.kube(ctx).apply(self._filled(ctx, manifest))

    def scaled(self, ctx: EnvContext, deployment: str) -> int:
        """The replicas Deployment `deployment` asks for now (0 when it does not exist)."""
        dep = self.kube(ctx).get("Deployment", deployment, self.namespace) or {}
        return int(dep.get("spec", {}).get("replicas", 0))

    def runs(self, ctx: EnvContext, manifest: Mapping[str, Any], replicas: int) -> bool:
        """Whether the live Deployment already asks for `replicas` pods of the manifest's
        images."""
        live = self.kube(ctx).get("Deployment", manifest["metadata"]["name"], self.namespace)
        if live is None or int(live.get("spec", {}).get("replicas", -1)) != replicas:
            return False

        def images(dep: Mapping[str, Any]) -> list[str]:
            pod = dep.get("spec", {}).get("template", {}).get("spec", {})
            return [str(c.get("image")) for c in pod.get("containers", [])]

        return images(live) == images(manifest)

    def replicas(self, ctx: EnvContext, name: str, color: str) -> list[int]:
        """[0] while service `name`'s Deployment of blue-green color `color` runs anything:
        on the cloud a color is one Deployment, stopped as one (scaled to 0)."""
        deployment = names(k8s_name(name), "blue_green", ingress=False).deployments[color]
        return [0] if self.scaled(ctx, deployment) > 0 else []

    def stop_replica(self, ctx: EnvContext, name: str, color: str, replica: int) -> None:
        """Scale service `name`'s Deployment of color `color` to 0 (the replica index is
        ignored: a color is stopped as one), as it is live: the scale-down of a kept color
        needs no rendering. Idempotent."""
        deployment = names(k8s_name(name), "blue_green", ingress=False).deployments[color]
        kube = self.kube(ctx)
        live = kube.get("Deployment", deployment, self.namespace)
        if live is None or int(live.get("spec", {}).get("replicas", 0)) == 0:
            return
        meta = live["metadata"]
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": meta["name"],
                "namespace": meta["namespace"],
                "labels": dict(meta.get("labels") or {}),
            },
            "spec": {**live["spec"], "replicas": 0},
        }
        kube.apply(body)

    # --- reads through the API server's service proxy -----------------------------------

    def _api_client(self, ctx: EnvContext) -> httpx.Client:
        cfg = self.connection(ctx).api.configuration
        # The client's own header auth (a kubeconfig's BearerToken; refreshed by its hook),
        # else the EKS token envplane keeps under "authorization".
        headers = {
            str(a["key"]): str(a["value"])
            for a in cfg.auth_settings().values()
            if a.get("in") == "header" and a.get("value")
        }
        token = cfg.get_api_key_with_prefix("authorization")
        if token and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = str(token)
        verify: Any = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
        cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file else None
        return httpx.Client(headers=headers, verify=verify, cert=cert, timeout=HTTP_TIMEOUT)

    def _proxy(self, ctx: EnvContext, namespace: str, service: str, port: int) -> str:
        host = str(self.connection(ctx).api.configuration.host).rstrip("/")
        return f"{host}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"

    def probe(self, ctx: EnvContext, service: str, path: str) -> tuple[bool, str]:
        """GET `path` on Service `service` (port 80) through the API server's proxy."""
        url = self._proxy(ctx, self.namespace, service, 80) + path
        try:
            with self._api_client(ctx) as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            return False, f"GET {path} on {service}: {exc}"
        if response.status_code != 200:
            return False, f"GET {path} on {service}: {response.status_code} {response.text[:120]}"
        return True, f"GET {path} on {service}: 200"

    def prometheus(self, ctx: EnvContext) -> PrometheusSource:
        url = os.environ.get(PROMETHEUS_URL_ENV)
        if url:
            return PrometheusSource(url, httpx.Client(timeout=HTTP_TIMEOUT))
        base = self._proxy(ctx, MONITORING_NAMESPACE, prometheus_service(), PROMETHEUS_PORT)
        return PrometheusSource(base, self._api_client(ctx))
