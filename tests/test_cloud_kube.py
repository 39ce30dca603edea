"""The Kubernetes driver through the official client, against tests/fakes/kubeapi.py (recorded
requests asserted) and against a real API server (`kube`): the cluster KUBECONFIG names when it
is reachable, else the in-suite control plane of tests/realkube.py (built by `make cluster`)."""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from envplane.errors import OperationFailed
from envplane.targets.cloud import aws, kubeconn
from envplane.targets.cloud.kube import KubeClient
from tests.fakes.kubeapi import FakeKube, kubeconfig

REGION = "us-east-1"  # the moto fixture's default region
pytest_plugins = ("tests.fakes.fixtures", "tests.realkube")


def _real_cluster() -> str | None:
    path = os.environ.get("KUBECONFIG")
    if not path or not Path(path.split(os.pathsep)[0]).is_file():
        return None
    try:
        api = kubeconn.from_kubeconfig(path.split(os.pathsep)[0], None).api
        api.configuration.retries = 0
        from kubernetes import client

        client.VersionApi(api).get_code(_request_timeout=3)
    except Exception:
        return None
    return path.split(os.pathsep)[0]


REAL = _real_cluster()


@dataclass
class Cluster:
    kube: KubeClient
    fake: FakeKube | None  # None: a real cluster, whose requests are not recorded
    messages: list[str]
    prefix: str

    def ns(self, name: str) -> str:
        return f"{self.prefix}{name}"


class _Marker:
    """The node stand-in for the real API server (it has no kubelet): marks the test's pods
    Ready as they appear, so rollouts complete as on a cluster with nodes."""

    def __init__(self, kube: Any, namespaces: list[str]) -> None:
        self.kube, self.namespaces = kube, namespaces
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(0.3):
            for ns in self.namespaces:
                with contextlib.suppress(Exception):  # a namespace not made yet, or gone
                    self.kube.mark_pods_ready(ns)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


@pytest.fixture(
    params=[
        "fake",
        # The in-suite API server (tests/realkube.py, `make cluster`), or the cluster KUBECONFIG
        # names when there is one: these run in `make test`, never skipped.
        pytest.param("real", marks=[pytest.mark.kube, pytest.mark.realtools]),
    ]
)
def cluster(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    monkeypatch.setenv("ENVPLANE_KUBE_POLL", "0.01" if request.param == "fake" else "1")
    messages: list[str] = []
    if request.param == "fake":
        fake = FakeKube(ready_after=3, token="t0ken").start()
        path = tmp_path / "kubeconfig"
        path.write_text(kubeconfig(fake.url, "t0ken"))
        api = kubeconn.from_kubeconfig(str(path), None).api
        try:
            yield Cluster(KubeClient(api, messages.append), fake, messages, "")
        finally:
            fake.stop()
        return
    marker: _Marker | None = None
    prefix = f"ep-{uuid.uuid4().hex[:6]}-"
    if REAL is not None:
        api = kubeconn.from_kubeconfig(REAL, os.environ.get("ENVPLANE_KUBE_CONTEXT")).api
    else:
        real = request.getfixturevalue("real_kube")
        api = kubeconn.from_kubeconfig(str(real.kubeconfig), None).api
        marker = _Marker(real, [f"{prefix}{name}" for name in ("a", "b", "app")])
    run = Cluster(KubeClient(api, messages.append), None, messages, prefix)
    try:
        yield run
    finally:
        if marker is not None:
            marker.close()
        for name in ("a", "b", "app", "slow"):
            run.kube.delete_namespace(run.ns(name), 120)


def namespace(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "envplane"}},
    }


def config_map(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    labels = {"app.kubernetes.io/managed-by": "envplane", "envplane.io/environment": "t"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "data": data,
    }


def deployment(ns: str, name: str, replicas: int = 2) -> dict[str, Any]:
    sel = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "envplane", "envplane.io/environment": "t"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": sel},
                "spec": {"containers": [{"name": "pause", "image": "registry.k8s.io/pause:3.9"}]},
            },
        },
    }


def test_server_side_apply_then_rollout(cluster: Cluster) -> None:
    ns = cluster.ns("app")
    cluster.kube.apply(namespace(ns))
    cm = cluster.kube.apply(config_map(ns, "app-config", {"LOG_LEVEL": "warn"}))
    assert cm["data"] == {"LOG_LEVEL": "warn"}
    cluster.kube.apply(deployment(ns, "backend-deployment"))
    cluster.kube.wait_rollout(ns, "backend-deployment", timeout=120)
    dep = cluster.kube.get("Deployment", "backend-deployment", ns)
    assert dep is not None and dep["status"]["readyReplicas"] == 2
    assert "backend-deployment: 2/2 ready, 2 updated" in cluster.messages
    if cluster.fake is None:
        return
    patches = cluster.fake.calls("PATCH")
    assert [r.path for r in patches] == [
        f"/api/v1/namespaces/{ns}",
        f"/api/v1/namespaces/{ns}/configmaps/app-config",
        f"/apis/apps/v1/namespaces/{ns}/deployments/backend-deployment",
    ]
    for req in patches:
        assert req.content_type == "application/apply-patch+yaml"
        assert req.query == {"fieldManager": "envplane", "force": "true"}
        assert req.authorization == "Bearer t0ken"
    reads = cluster.fake.calls("GET", "/deployments/backend-deployment")
    assert len(reads) == 4  # not ready, not ready, ready; then the test's own read
    assert cluster.messages[0] == "backend-deployment: 0/2 ready, 0 updated"


def test_apply_is_idempotent(cluster: Cluster) -> None:
    ns = cluster.ns("app")
    cluster.kube.apply(namespace(ns))
    first = cluster.kube.apply(deployment(ns, "web", 1))
    second = cluster.kube.apply(deployment(ns, "web", 1))
    assert first["metadata"]["uid"] == second["metadata"]["uid"]
    assert first["metadata"]["generation"] == second["metadata"]["generation"]


def test_rollout_timeout_is_an_error_naming_the_deployment(cluster: Cluster) -> None:
    # Never ready: on the fake by its setting; on the real server no stand-in marks its pods
    # (the namespace is not one the fixture's node stand-in watches) and no node runs them.
    if cluster.fake is not None:
        cluster.fake.ready_after = 10**6
    ns = cluster.ns("slow")
    cluster.kube.apply(namespace(ns))
    cluster.kube.apply(deployment(ns, "stuck"))
    with pytest.raises(OperationFailed, match=rf"Deployment stuck in {ns} not ready after 0s"):
        cluster.kube.wait_rollout(ns, "stuck", timeout=0.05)


def test_copy_config_maps_between_namespaces(cluster: Cluster) -> None:
    a, b = cluster.ns("a"), cluster.ns("b")
    for ns in (a, b):
        cluster.kube.apply(namespace(ns))
    cluster.kube.apply(config_map(a, "app-config", {"LOG_LEVEL": "debug"}))
    cluster.kube.apply(config_map(a, "backend-config", {"server.json": "{}"}))
    if cluster.fake is not None:  # a real cluster makes this one itself
        cluster.kube.apply(config_map(a, "kube-root-ca.crt", {"ca.crt": "..."}))
    copied = cluster.kube.copy_config_maps(a, b)
    assert sorted(copied) == ["app-config", "backend-config"]
    got = cluster.kube.get("ConfigMap", "app-config", b)
    assert got is not None and got["data"] == {"LOG_LEVEL": "debug"}
    assert got["metadata"]["namespace"] == b


def test_prune_deletes_only_what_is_no_longer_wanted(cluster: Cluster) -> None:
    ns = cluster.ns("app")
    cluster.kube.apply(namespace(ns))
    cluster.kube.apply(config_map(ns, "keep", {"a": "1"}))
    cluster.kube.apply(config_map(ns, "drop", {"a": "2"}))
    gone = cluster.kube.prune(
        ns, "app.kubernetes.io/managed-by=envplane,envplane.io/environment=t", {"ConfigMap/keep"}
    )
    assert gone == ["ConfigMap/drop"]
    assert cluster.kube.get("ConfigMap", "keep", ns) is not None
    assert cluster.kube.get("ConfigMap", "drop", ns) is None


def test_namespace_deletion_waits_until_gone(cluster: Cluster) -> None:
    ns = cluster.ns("a")
    cluster.kube.apply(namespace(ns))
    cluster.kube.apply(config_map(ns, "x", {"a": "1"}))
    cluster.kube.delete_namespace(ns, timeout=120)
    assert cluster.kube.get("Namespace", ns) is None
    cluster.kube.delete_namespace(ns, timeout=5)  # already gone: fine
    if cluster.fake is not None:
        reads = cluster.fake.calls("GET", f"/namespaces/{ns}")
        assert len(reads) >= 2  # it looked again until the API said 404


def test_api_errors_are_one_clear_line(tmp_path: Path) -> None:
    fake = FakeKube(token="right").start()
    try:
        path = tmp_path / "kubeconfig"
        path.write_text(kubeconfig(fake.url, "wrong"))
        kube = KubeClient(kubeconn.from_kubeconfig(str(path), None).api)
        with pytest.raises(OperationFailed, match="applying Namespace/x: 401 Unauthorized"):
            kube.apply(namespace("x"))
        path.write_text(kubeconfig(fake.url, "right"))
        kube = KubeClient(kubeconn.from_kubeconfig(str(path), None).api)
        with pytest.raises(OperationFailed, match=r'404 Not Found: namespaces "nope" not found'):
            kube.apply(config_map("nope", "c", {}))
    finally:
        fake.stop()
    with pytest.raises(OperationFailed, match="cannot reach the Kubernetes API"):
        kube.get("Namespace", "x")


def test_a_missing_kubeconfig_is_bad_input(tmp_path: Path) -> None:
    from envplane.errors import BadInput

    with pytest.raises(BadInput, match="cannot use kubeconfig"):
        kubeconn.from_kubeconfig(str(tmp_path / "nope"), None)


def test_eks_connection_signs_requests_with_an_sts_token(aws_env: str, tmp_path: Path) -> None:
    """The EKS path end to end over HTTP: describe-cluster data, CA file, token in the header."""
    seen: list[str] = []

    def check(token: str) -> bool:
        seen.append(token)
        body = token.removeprefix("k8s-aws-v1.")
        url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
        query = parse_qs(urlsplit(url).query)
        return query.get("Action") == ["GetCallerIdentity"] and "x-k8s-aws-id" in str(query)

    fake = FakeKube(token_check=check).start()
    try:
        pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        found = aws.EksCluster(
            "sunday-staging", "ACTIVE", fake.url, base64.b64encode(pem.encode()).decode(), "1.31"
        )
        conn = kubeconn.from_eks(found, REGION, tmp_path / "kube")
        assert (tmp_path / "kube" / "sunday-staging-ca.crt").read_text() == pem
        KubeClient(conn.api).apply(namespace("sunday-staging"))
        assert seen and seen[0].startswith("k8s-aws-v1.")
        helm = conn.helm_env()
        assert helm["HELM_KUBEAPISERVER"] == fake.url
        assert helm["HELM_KUBETOKEN"].startswith("k8s-aws-v1.")
    finally:
        fake.stop()
    creating = aws.EksCluster("x", "CREATING", "https://x", "", "1.31")
    with pytest.raises(OperationFailed, match="CREATING, not ACTIVE"):
        kubeconn.from_eks(creating, REGION, tmp_path)


def test_eks_token_is_minted_at_once_and_renewed_on_a_monotonic_clock_near_zero(
    aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """time.monotonic() counts from boot: on a host up for under TOKEN_LIFETIME (a fresh CI VM)
    the first request still carries a token, and it is renewed after TOKEN_LIFETIME, not before."""
    now = [5.0]  # seconds since boot
    monkeypatch.setattr(kubeconn.time, "monotonic", lambda: now[0])
    minted: list[str] = []
    real = aws.eks_token

    def counting(region: str, name: str) -> str:
        minted.append(real(region, name))
        return minted[-1]

    monkeypatch.setattr(aws, "eks_token", counting)
    pem = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    found = aws.EksCluster("sunday-staging", "ACTIVE", "https://x", pem.decode(), "1.31")
    conn = kubeconn.from_eks(found, REGION, tmp_path)
    auth = conn.api.configuration.get_api_key_with_prefix("authorization")
    assert len(minted) == 1 and auth == f"Bearer {minted[0]}"
    assert minted[0].startswith("k8s-aws-v1.")
    now[0] += kubeconn.TOKEN_LIFETIME - 1
    assert conn.helm_env()["HELM_KUBETOKEN"] == minted[0] and len(minted) == 1
    now[0] += 1
    conn.api.configuration.get_api_key_with_prefix("authorization")
    assert len(minted) == 2


def test_connect_prefers_the_users_kubeconfig_only_when_asked(
    aws_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENVPLANE_KUBECONFIG", raising=False)
    monkeypatch.delenv("ENVPLANE_KUBE_CONTEXT", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "someone-elses"))
    with pytest.raises(OperationFailed, match="EKS cluster sunday-staging not found"):
        kubeconn.connect("sunday-staging", REGION, tmp_path)
    path = tmp_path / "mine"
    path.write_text(kubeconfig("http://127.0.0.1:9", "x"))
    monkeypatch.setenv("ENVPLANE_KUBECONFIG", str(path))
    conn = kubeconn.connect("sunday-staging", REGION, tmp_path)
    assert conn.host == "http://127.0.0.1:9"
    assert conn.helm_env() == {"KUBECONFIG": str(path)}


def test_an_apply_blocked_by_another_field_manager_names_the_field_and_the_manager(
    cluster: Cluster,
) -> None:
    """Without force, a field another manager set differently is a 409 from the server, and
    envplane's error names the field and the manager; with force envplane takes it over."""
    from envplane.targets.cloud.kube import ApplyConflict

    ns = cluster.ns("app")
    cluster.kube.apply(namespace(ns))
    cluster.kube.apply(config_map(ns, "app-config", {"LOG_LEVEL": "warn", "MODE": "a"}))
    # Someone else sets LOG_LEVEL (as `kubectl apply --server-side` by hand would).
    cluster.kube.apply(config_map(ns, "app-config", {"LOG_LEVEL": "debug"}), manager="by-hand")
    with pytest.raises(ApplyConflict) as caught:
        cluster.kube.apply(
            config_map(ns, "app-config", {"LOG_LEVEL": "info", "MODE": "a"}), force=False
        )
    assert caught.value.conflicts == [(".data.LOG_LEVEL", "by-hand")]
    message = str(caught.value)
    assert f"applying ConfigMap/app-config in {ns}: conflict" in message
    assert '.data.LOG_LEVEL (managed by "by-hand")' in message
    assert caught.value.hint and "--force-conflicts" in caught.value.hint
    # The same value is shared, not a conflict; force takes the field over.
    cluster.kube.apply(
        config_map(ns, "app-config", {"LOG_LEVEL": "debug", "MODE": "b"}), force=False
    )
    cluster.kube.apply(config_map(ns, "app-config", {"LOG_LEVEL": "info", "MODE": "b"}))
    got = cluster.kube.get("ConfigMap", "app-config", ns)
    assert got is not None and got["data"] == {"LOG_LEVEL": "info", "MODE": "b"}


def test_a_partial_apply_by_another_manager_keeps_the_rest(cluster: Cluster) -> None:
    """What `kubectl rollout restart` relies on: a manager applying one annotation leaves
    the Deployment envplane applied whole, and envplane's next apply leaves the annotation."""
    from envplane.targets.cloud import configsync

    ns = cluster.ns("app")
    cluster.kube.apply(namespace(ns))
    cluster.kube.apply(deployment(ns, "web", 1))
    configsync.restart(cluster.kube, ns, "web", at="2025-01-15T10:00:00Z")
    cluster.kube.apply(deployment(ns, "web", 1))
    dep = cluster.kube.get("Deployment", "web", ns)
    assert dep is not None
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["selector"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {configsync.RESTARTED_AT: "2025-01-15T10:00:00Z"}


def test_server_version_and_discovery_pick_what_it_serves(cluster: Cluster) -> None:
    major, minor, git = cluster.kube.server_version()
    assert (major, minor) >= (1, 19) and git.startswith("v")
    served = cluster.kube.served()
    assert {"v1", "apps/v1", "networking.k8s.io/v1"} <= served
    expected = "policy/v1" if "policy/v1" in served else "policy/v1beta1"
    assert cluster.kube.version_for("PodDisruptionBudget") == expected


def pdb(ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": "web-pdb",
            "namespace": ns,
            "labels": {"envplane.io/environment": "t"},
        },
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}},
    }


def test_a_server_without_policy_v1_gets_its_disruption_budgets_in_v1beta1(tmp_path: Path) -> None:
    """A 1.20 server (policy/v1 came in 1.21): the same object through policy/v1beta1, found
    by discovery, for apply, read, list and delete alike."""
    fake = FakeKube(
        version=(1, 20),
        served=frozenset({"v1", "apps/v1", "policy/v1beta1", "networking.k8s.io/v1"}),
    ).start()
    try:
        path = tmp_path / "kubeconfig"
        path.write_text(kubeconfig(fake.url))
        kube = KubeClient(kubeconn.from_kubeconfig(str(path), None).api)
        kube.apply(namespace("app"))
        kube.check_served([pdb("app")])
        applied = kube.apply(pdb("app"))
        assert applied["apiVersion"] == "policy/v1beta1"
        assert [r.path for r in fake.calls("PATCH", "poddisruptionbudgets")] == [
            "/apis/policy/v1beta1/namespaces/app/poddisruptionbudgets/web-pdb"
        ]
        assert kube.get("PodDisruptionBudget", "web-pdb", "app") is not None
        listed = kube.list_objects("PodDisruptionBudget", "app", "envplane.io/environment=t")
        assert [o["metadata"]["name"] for o in listed] == ["web-pdb"]
        assert kube.delete("PodDisruptionBudget", "web-pdb", "app")
    finally:
        fake.stop()


def test_what_the_server_cannot_serve_is_refused_before_anything_is_applied(
    tmp_path: Path,
) -> None:
    fake = FakeKube(version=(1, 31), served=frozenset({"v1", "apps/v1", "policy/v1"})).start()
    old = FakeKube(version=(1, 18)).start()
    try:
        path = tmp_path / "kubeconfig"
        path.write_text(kubeconfig(fake.url))
        kube = KubeClient(kubeconn.from_kubeconfig(str(path), None).api)
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "namespace": "app"},
            "spec": {"podSelector": {}},
        }
        with pytest.raises(OperationFailed) as caught:
            kube.check_served([namespace("app"), policy])
        assert "does not serve networking.k8s.io/v1 (for NetworkPolicy/default-deny)" in str(
            caught.value
        )
        assert "nothing was applied" in str(caught.value)
        assert fake.calls("PATCH") == []
        path.write_text(kubeconfig(old.url))
        kube = KubeClient(kubeconn.from_kubeconfig(str(path), None).api)
        with pytest.raises(
            OperationFailed, match=r"is v1\.18\.0-fake; envplane needs Kubernetes 1\.19"
        ):
            kube.check_served([namespace("app")])
    finally:
        fake.stop()
        old.stop()
