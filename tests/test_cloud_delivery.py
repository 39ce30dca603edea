"""Releases delivered to a cloud environment: CloudRollout and CloudDelivery against the HTTP
fake of the Kubernetes API (tests/fakes/kubeapi.py; its recorded requests are asserted), with
the stand-in terraform and helm, a moto server for AWS, and a real Prometheus process scraping
a stand-in of the ingress-nginx controller's metrics (tests/fakes/ingress_nginx.py), reached
through the fake API's service proxy as a cluster's Prometheus is.

envplane's own deploy and rollback run here (delivery.rollouts picks CloudRollout for a cloud
environment), as the CLI calls them."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from envplane.delivery import execute, rollback
from envplane.delivery.deploy import deploy
from envplane.delivery.releases import create_release
from envplane.delivery.verdicts import Paused, RolledBack
from envplane.errors import BadInput, MatrixError
from envplane.lifecycle.apply import create
from envplane.matrix import load_matrix_text
from envplane.render.cloud import desired_cloud
from envplane.settings import Settings
from envplane.targets.cloud.delivery import CloudDelivery, prometheus_service
from envplane.workspace import Workspace
from tests.conftest import REPO
from tests.fakes.ingress_nginx import IngressTraffic
from tests.fakes.kubeapi import FakeKube, Request

if TYPE_CHECKING:
    from tests.fakes.fixtures import Tools

pytest_plugins = ("tests.fakes.fixtures",)
EXAMPLE = REPO / "examples" / "sunday"
NS = "sunday-staging"
STAGING = """  staging:
    primary: rolling
    alternatives: [blue_green]
    validation_required: standard
    approval_required: false
"""
ANALYSIS = """    scale_down_delay: 1h
    analysis:
      interval: 2s
      window: 2s
      min_requests: {min_requests}
      success_rate: 95
      p99_ms: 500
      failure_limit: 1
"""


# --- a real Prometheus, scraping ingress-nginx's stand-in ------------------------------------


@dataclass
class Prom:
    url: str
    traffic: IngressTraffic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.skip("prometheus is not installed (make setup installs it)")
    traffic = IngressTraffic(kube=None, namespace=NS, service="backend").start()
    home = tmp_path_factory.mktemp("prometheus")
    (home / "prometheus.yml").write_text(
        "global: {scrape_interval: 500ms, evaluation_interval: 500ms}\n"
        "scrape_configs:\n"
        "  - job_name: ingress-nginx\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{traffic.port}']}}]\n"
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                # Ready, and the stand-in scraped a few times: a first check has samples.
                answer = httpx.get(
                    f"{url}/api/v1/query", params={"query": "count_over_time(up[1m])"}, timeout=1
                ).json()
                found = answer.get("data", {}).get("result", [])
                if found and float(found[0]["value"][1]) >= 3:
                    break
            except (httpx.HTTPError, ValueError):
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("prometheus did not start")
            time.sleep(0.2)
        yield Prom(url, traffic)
    finally:
        traffic.stop()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


# --- an environment on the fakes -------------------------------------------------------------


@dataclass
class Cloud:
    ws: Workspace
    kube: FakeKube
    traffic: IngressTraffic | None
    mark: int = 0  # requests before the deploy under test

    def since(self, method: str, contains: str = "") -> list[Request]:
        return [
            r for r in self.kube.requests[self.mark :] if r.method == method and contains in r.path
        ]

    def patched(self, plural: str, name: str) -> list[dict[str, Any]]:
        path = f"/namespaces/{NS}/{plural}/{name}"
        return [r.body for r in self.since("PATCH", path) if r.path.endswith(path)]

    def live(self, plural: str, name: str) -> dict[str, Any]:
        return self.kube.objects[(plural, NS, name)]


def image(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch) -> None:
    """A blue-green deploy starts `scale-down --when-due` in a session of its own; here it
    would outlive the test by the whole delay (1 h), so it is not started."""
    monkeypatch.setattr(execute, "start_in_background", lambda ws, env: None)


def make(
    tmp_path: Path,
    kube: FakeKube,
    *,
    strategy: str,
    ingress: bool,
    steps: str = "",
    min_requests: int = 10,
    prom: Prom | None = None,
) -> Cloud:
    root = tmp_path / "sunday"
    for part in ("config", "templates", "app", "frontend"):
        shutil.copytree(EXAMPLE / part, root / part)
    matrix = root / "config" / "environment-matrix.yaml"
    text = matrix.read_text()
    entry = f"  staging:\n    primary: {strategy}\n" + ANALYSIS.format(min_requests=min_requests)
    text = text.replace(STAGING, entry + steps)
    if ingress:
        text = text.replace("variables:\n", "variables:\n  INGRESS_CLASS: nginx\n")
    matrix.write_text(text)
    home = tmp_path / "home"
    ws = Workspace(Settings(matrix, home, f"sqlite:///{tmp_path / 'state.db'}"))
    create(ws, "staging", target="cloud")
    kube.proxies[f"{NS}/backend-preview:80"] = lambda path: (200, f"ok {path}")
    if prom is not None:
        kube.proxies[f"monitoring/{prometheus_service()}:9090"] = prom.url
        prom.traffic.kube = kube
        prom.traffic.fail_share = {"1.2.0-bad": 0.3}
    return Cloud(ws, kube, prom.traffic if prom else None, mark=len(kube.requests))


def release(cloud: Cloud, version: str) -> str:
    return create_release(cloud.ws, {"backend": version}).id


@pytest.fixture
def cloud_env(staging_made: Tools, kube_env: FakeKube, wired: None) -> FakeKube:
    return kube_env


# --- rendering -------------------------------------------------------------------------------


def test_a_primary_canary_whose_weights_replicas_cannot_express_is_a_located_error() -> None:
    text = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()
    text = text.replace(STAGING, "  staging:\n    primary: canary\n    steps: [{weight: 10}]\n")
    matrix = load_matrix_text(text, str(EXAMPLE / "config" / "environment-matrix.yaml"))
    with pytest.raises(MatrixError) as caught:
        desired_cloud(matrix, "staging")
    assert "canary weight 10 cannot be approximated with the 2 replica(s)" in caught.value.message
    assert caught.value.key is not None and "steps" in caught.value.key
    with_ingress = load_matrix_text(
        text.replace("variables:\n", "variables:\n  INGRESS_CLASS: nginx\n"),
        str(EXAMPLE / "config" / "environment-matrix.yaml"),
    )
    objects = desired_cloud(with_ingress, "staging").resource("kubernetes/workloads").spec
    canary = next(
        m
        for m in objects["manifests"]
        if m["metadata"]["name"] == "backend-canary" and m["kind"] == "Ingress"
    )
    assert canary["metadata"]["annotations"] == {
        "nginx.ingress.kubernetes.io/canary": "true",
        "nginx.ingress.kubernetes.io/canary-weight": "0",
    }
    assert canary["spec"]["rules"][0]["host"] == "backend.staging.sunday.example.com"


# --- rolling and recreate --------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rolling", "recreate"])
def test_rolling_and_recreate_set_the_deployment_strategy_and_the_image_tag(
    strategy: str, tmp_path: Path, cloud_env: FakeKube
) -> None:
    cloud = make(tmp_path, cloud_env, strategy=strategy, ingress=False)
    result = deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    assert result.status == "succeeded"
    [body] = cloud.patched("deployments", "backend-deployment")
    assert image(body) == "ghcr.io/sunday/backend:1.1.0"
    assert body["spec"]["replicas"] == 2
    if strategy == "rolling":
        assert body["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        }
    else:
        assert body["spec"]["strategy"] == {"type": "Recreate"}
        assert result.detail["downtime_seconds"] >= 0
    env = {
        e["name"]: e.get("value") for e in body["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["VERSION"] == "1.1.0"
    assert "${tf:" not in str(body)  # the placeholders were filled from Terraform's outputs
    live = cloud.ws.store.get_live("staging")
    assert live is not None and live.services["backend"]["version"] == "1.1.0"
    recorded = cloud.ws.store.resources("staging")["kubernetes/workloads"].spec
    dep = next(m for m in recorded["manifests"] if m["metadata"]["name"] == "backend-deployment")
    assert image(dep) == "ghcr.io/sunday/backend:1.1.0"


def test_an_alternative_strategy_is_bad_input_on_the_cloud(
    tmp_path: Path, cloud_env: FakeKube
) -> None:
    cloud = make(tmp_path, cloud_env, strategy="rolling", ingress=False)
    text = cloud.ws.settings.matrix_path.read_text()
    cloud.ws.settings.matrix_path.write_text(
        text.replace("    primary: rolling\n", "    primary: rolling\n    alternatives: [canary]\n")
    )
    cloud.ws = Workspace(cloud.ws.settings)
    with pytest.raises(BadInput, match="by rolling only, not canary"):
        deploy(cloud.ws, "staging", release(cloud, "1.1.0"), strategy="canary")
    assert cloud.since("PATCH") == []


# --- blue-green ------------------------------------------------------------------------------


def test_blue_green_switches_the_active_service_once_keeps_the_old_color_and_switches_back(
    tmp_path: Path, cloud_env: FakeKube, prometheus: Prom
) -> None:
    cloud = make(tmp_path, cloud_env, strategy="blue_green", ingress=True, prom=prometheus)
    assert cloud.live("deployments", "backend-green")["spec"]["replicas"] == 0
    result = deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    assert result.status == "succeeded", result
    green = cloud.patched("deployments", "backend-green")
    assert [b["spec"]["replicas"] for b in green] == [2]
    assert image(green[0]) == "ghcr.io/sunday/backend:1.1.0"
    reads = cloud.since("GET", f"/namespaces/{NS}/deployments/backend-green")
    assert len(reads) >= 2  # waited until the new color was ready
    smoke = [r.path for r in cloud.since("GET", "/services/backend-preview:80/proxy")]
    assert smoke == [
        f"/api/v1/namespaces/{NS}/services/backend-preview:80/proxy/health",
        f"/api/v1/namespaces/{NS}/services/backend-preview:80/proxy/smoke",
    ]
    [switch] = cloud.patched("services", "backend-service")
    assert switch["spec"]["selector"]["envplane.io/color"] == "green"
    order = [r.path.rsplit("/", 1)[-1] for r in cloud.since("PATCH")]
    assert order.index("backend-green") < order.index("backend-service")
    assert cloud.patched("deployments", "backend-blue") == []  # kept for the delay
    assert cloud.live("deployments", "backend-blue")["spec"]["replicas"] == 2
    [check] = result.detail["analysis"]
    assert check["result"] == "pass" and check["requests"] >= 10, check
    live = cloud.ws.store.get_live("staging")
    assert live is not None and live.retained["backend"]["color"] == "blue"

    cloud.mark = len(cloud.kube.requests)
    back = rollback.rollback(cloud.ws, "staging")
    assert back.detail["switch_only"] is True
    [switch] = cloud.patched("services", "backend-service")
    assert switch["spec"]["selector"]["envplane.io/color"] == "blue"
    assert cloud.patched("deployments", "backend-blue") == []  # nothing restarted
    assert [b["spec"]["replicas"] for b in cloud.patched("deployments", "backend-green")] == [0]


def test_blue_green_whose_smoke_check_fails_never_switches(
    tmp_path: Path, cloud_env: FakeKube
) -> None:
    cloud = make(tmp_path, cloud_env, strategy="blue_green", ingress=False)
    cloud.kube.proxies[f"{NS}/backend-preview:80"] = lambda path: (
        (500, "boom") if path == "/smoke" else (200, "ok")
    )
    with pytest.raises(RolledBack, match="pre-promotion check through backend-preview"):
        deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    assert cloud.patched("services", "backend-service") == []
    assert cloud.live("deployments", "backend-green")["spec"]["replicas"] == 0
    assert cloud.live("services", "backend-service")["spec"]["selector"]["envplane.io/color"] == (
        "blue"
    )


# --- canary ----------------------------------------------------------------------------------

STEPS = "    steps: [{weight: 10}, {weight: 50}, {weight: 100}]\n"


def weights(cloud: Cloud) -> list[str]:
    key = "nginx.ingress.kubernetes.io/canary-weight"
    return [b["metadata"]["annotations"][key] for b in cloud.patched("ingresses", "backend-canary")]


def test_canary_walks_the_ingress_weights_then_promotes_the_stable_track(
    tmp_path: Path, cloud_env: FakeKube, prometheus: Prom
) -> None:
    cloud = make(tmp_path, cloud_env, strategy="canary", ingress=True, steps=STEPS, prom=prometheus)
    result = deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    assert result.status == "succeeded", result
    assert weights(cloud) == ["10", "50", "100", "0"]
    canary = cloud.patched("deployments", "backend-canary")
    assert (canary[0]["spec"]["replicas"], image(canary[0])) == (2, "ghcr.io/sunday/backend:1.1.0")
    assert cloud.live("deployments", "backend-canary")["spec"]["replicas"] == 0
    assert image(cloud.live("deployments", "backend")) == "ghcr.io/sunday/backend:1.1.0"
    checks = result.detail["analysis"]
    assert [c["result"] for c in checks] == ["pass", "pass"]
    assert all(c["requests"] >= 10 and "stable" in c for c in checks)


def test_a_failing_canary_is_weighted_to_zero_and_scaled_down_stable_keeps_serving(
    tmp_path: Path, cloud_env: FakeKube, prometheus: Prom
) -> None:
    cloud = make(tmp_path, cloud_env, strategy="canary", ingress=True, steps=STEPS, prom=prometheus)
    with pytest.raises(RolledBack, match="success rate") as caught:
        deploy(cloud.ws, "staging", release(cloud, "1.2.0-bad"))
    assert caught.value.exit_code == 1
    assert weights(cloud) == ["10", "0"]
    assert cloud.live("deployments", "backend-canary")["spec"]["replicas"] == 0
    stable = cloud.live("deployments", "backend")
    assert image(stable) == "ghcr.io/sunday/backend:1.0.0" and stable["spec"]["replicas"] == 2
    assert all(
        image(b) != "ghcr.io/sunday/backend:1.2.0-bad"
        for b in cloud.patched("deployments", "backend")
    )
    live = cloud.ws.store.get_live("staging")
    assert live is None or live.services["backend"]["version"] == "1.0.0"


def test_an_inconclusive_canary_pauses_where_it_is(
    tmp_path: Path, cloud_env: FakeKube, prometheus: Prom
) -> None:
    cloud = make(
        tmp_path,
        cloud_env,
        strategy="canary",
        ingress=True,
        steps=STEPS,
        min_requests=1_000_000,
        prom=prometheus,
    )
    with pytest.raises(Paused, match="inconclusive") as caught:
        deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    assert caught.value.exit_code == 3
    assert weights(cloud) == ["10"]  # held at its share
    assert cloud.live("deployments", "backend-canary")["spec"]["replicas"] == 2
    active = cloud.ws.store.active_rollout("staging")
    assert active is not None and active.status == "paused"
    back = rollback.rollback(cloud.ws, "staging")  # a paused rollout settles back
    assert back.status == "rolled_back"
    assert weights(cloud) == ["10", "0"]
    assert cloud.live("deployments", "backend-canary")["spec"]["replicas"] == 0
    assert image(cloud.live("deployments", "backend")) == "ghcr.io/sunday/backend:1.0.0"


def test_without_an_ingress_the_canary_weight_is_its_share_of_the_replicas(
    tmp_path: Path, cloud_env: FakeKube, prometheus: Prom
) -> None:
    """50 % of two replicas: one canary, one stable. ingress-nginx then sees none of the
    canary's requests, so its analysis is inconclusive and the rollout holds."""
    cloud = make(
        tmp_path,
        cloud_env,
        strategy="canary",
        ingress=False,
        steps="    steps: [{weight: 50}, {weight: 100}]\n",
        prom=prometheus,
    )
    with pytest.raises(Paused, match="inconclusive"):
        deploy(cloud.ws, "staging", release(cloud, "1.1.0"))
    canary = cloud.patched("deployments", "backend-canary")
    stable = cloud.patched("deployments", "backend")
    assert [b["spec"]["replicas"] for b in canary] == [1]
    assert image(canary[0]) == "ghcr.io/sunday/backend:1.1.0"
    assert [(b["spec"]["replicas"], image(b)) for b in stable] == [
        (1, "ghcr.io/sunday/backend:1.0.0")
    ]
    assert cloud.patched("ingresses", "backend-canary") == []


# --- killed and resumed ----------------------------------------------------------------------

CHILD = """
import sys
from envplane.delivery import execute
from envplane.delivery.deploy import deploy
from envplane.settings import Settings
from envplane.workspace import Workspace
from pathlib import Path

execute.start_in_background = lambda ws, env: None  # the 1 h scale-down delay
matrix, home, db, rel = sys.argv[1:]
deploy(Workspace(Settings(Path(matrix), Path(home), db)), "staging", rel)
"""


@pytest.mark.parametrize(("kill_after", "forward"), [(1, False), (3, True)])
def test_a_killed_blue_green_resumes_to_one_color(
    kill_after: int, forward: bool, tmp_path: Path, cloud_env: FakeKube
) -> None:
    """SIGKILLed after its first step (the new color up, no switch yet) it settles back; after
    its third (the switch) it settles forward and keeps the old color for the delay."""
    import os
    import sys

    from envplane.engine import registry as operations

    cloud = make(tmp_path, cloud_env, strategy="blue_green", ingress=False)
    rel = release(cloud, "1.1.0")
    settings = cloud.ws.settings
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(settings.matrix_path),
            str(settings.home),
            settings.database_url,
            rel,
        ],
        env={**os.environ, "ENVPLANE_FAULT_KILL_AFTER_STEP": str(kill_after)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    active = cloud.ws.store.active_rollout("staging")
    assert active is not None and active.status == "running"
    assert cloud.live("deployments", "backend-green")["spec"]["replicas"] == 2
    cloud.mark = len(cloud.kube.requests)
    operations.resume(cloud.ws, active.id)
    color = cloud.live("services", "backend-service")["spec"]["selector"]["envplane.io/color"]
    green = cloud.live("deployments", "backend-green")
    blue = cloud.live("deployments", "backend-blue")
    live = cloud.ws.store.get_live("staging")
    if forward:
        assert color == "green" and green["spec"]["replicas"] == 2
        assert image(green) == "ghcr.io/sunday/backend:1.1.0"
        assert blue["spec"]["replicas"] == 2  # kept for the scale-down delay
        assert cloud.patched("services", "backend-service") == []  # switched before the kill
        assert live is not None and live.services["backend"] == {
            "version": "1.1.0",
            "color": "green",
        }
        # The kept color's scale-down, as a later scale-down operation does it: from what is
        # live, only its size changed.
        kept = CloudDelivery()
        kept.attach(cloud.ws.store.resources("staging")["kubernetes/workloads"].spec)
        ctx = cloud.ws.context("staging", {}, "sunday")
        assert kept.replicas(ctx, "backend", "blue") == [0]
        kept.stop_replica(ctx, "backend", "blue", 0)
        kept.stop_replica(ctx, "backend", "blue", 1)  # a color stops as one: nothing more
        [body] = cloud.patched("deployments", "backend-blue")
        assert body["spec"]["replicas"] == 0 and image(body) == "ghcr.io/sunday/backend:1.0.0"
        assert kept.replicas(ctx, "backend", "blue") == []
    else:
        assert color == "blue" and green["spec"]["replicas"] == 0
        assert image(blue) == "ghcr.io/sunday/backend:1.0.0" and blue["spec"]["replicas"] == 2
        assert cloud.patched("services", "backend-service") == []  # never switched
        assert live is None or live.services["backend"]["version"] == "1.0.0"
    record = cloud.ws.store.get_rollout(active.id)
    assert record is not None and record.status in ("succeeded", "rolled_back")
