"""Real tools for the `realtools` tier: a real Kubernetes control plane and real terraform, helm
and kubectl, all built or fetched by `make cluster` (tools/cluster/) into a cache outside the
checkout ($ENVPLANE_TOOLS_CACHE, default /var/cache/envplane-tools; the current versions are
linked in its bin/).

`real_kube` (session): etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
127.0.0.1 free ports, in a temp dir: a token file with one throwaway token in `system:masters`,
RBAC, a service-account key pair, the API server's self-signed serving certificate. There is no
kubelet and no container runtime: pods are created (ReplicaSets, ...) and stay Pending until a
test calls `mark_pods_ready(namespace)`, the stand-in for a node, which writes what a kubelet
would through the pods' status subresource.

The API server keeps an audit log of every write request (metadata only): `RealKube.audit(...)`
lists them, e.g. to count the patches one command sent.

`real_kube_env` (per test): ENVPLANE_KUBECONFIG and KUBECONFIG naming it.

`real_tools` (per test): a temp bin dir first on PATH with the real `terraform`, `helm` and
`kubectl`, HOME a temp dir, and no CLI configuration of the machine's.

When the tools are not built these fixtures FAIL (not skip) saying to run `make cluster`; the
tests using them carry the `realtools` marker, so `-m "not realtools"` leaves them out."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

TOOLS_CACHE = Path(os.environ.get("ENVPLANE_TOOLS_CACHE", "/var/cache/envplane-tools"))
TOOLS_BIN = TOOLS_CACHE / "bin"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")
CLIS = ("terraform", "helm", "kubectl")
STARTUP_TIMEOUT = 60.0
# Every write request, its metadata only (no bodies), once answered; no read.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
"""


def tool(name: str) -> Path:
    """The cached binary NAME, or a test failure saying how to build it."""
    path = TOOLS_BIN / name
    if not (path.exists() and os.access(path, os.X_OK)):
        pytest.fail(
            f"real tool {name!r} is not built ({path} missing): run `make cluster` "
            "(tools/cluster/all.sh; the first build of the Kubernetes control plane takes 6-12 "
            "min), or set ENVPLANE_TOOLS_CACHE to where it was built",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
            except ProcessLookupError:
                pass


@dataclass
class RealKube:
    """A running control plane: where it is, how to reach it, and the node stand-in."""

    workdir: Path
    server: str  # https://127.0.0.1:PORT
    token: str  # bearer token of a system:masters user
    kubeconfig: Path
    ca_file: Path  # the API server's self-signed serving certificate
    version: str = ""  # the server's gitVersion, e.g. v1.20.2
    procs: list[_Proc] = field(default_factory=list)
    audit_log: Path | None = None  # the API server's audit log: every write, one JSON a line

    def audit(self, **match: str) -> list[dict[str, Any]]:
        """The API server's audit events (stage ResponseComplete) of every write request
        (create, update, patch, delete, deletecollection) whose objectRef has each MATCH
        (resource=..., namespace=..., name=..., apiGroup=..., apiVersion=...); `verb` and
        `user` match the event's verb and user name."""
        import json

        if self.audit_log is None or not self.audit_log.exists():
            return []
        found = []
        for line in self.audit_log.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("stage") != "ResponseComplete":
                continue
            ref = dict(event.get("objectRef") or {})
            ref["verb"] = event.get("verb", "")
            ref["user"] = (event.get("user") or {}).get("username", "")
            if all(ref.get(k) == v for k, v in match.items()):
                found.append(event)
        return found

    # -- clients -------------------------------------------------------------------------
    def api_client(self) -> Any:
        """A kubernetes.client.ApiClient for this cluster (the official client)."""
        from kubernetes import client, config

        api: Any = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(self.kubeconfig)
        )
        assert isinstance(api, client.ApiClient)
        return api

    def request(self, path: str, timeout: float = 5, token: str | None = None) -> tuple[int, bytes]:
        """GET PATH on the API server with the token (or TOKEN): (status, body)."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {token or self.token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as err:
            return int(err.code), bytes(err.read())

    def logs(self, name: str, lines: int = 40) -> str:
        return next((p.tail(lines) for p in self.procs if p.name == name), "")

    # -- the node stand-in ---------------------------------------------------------------
    def mark_pods_ready(self, namespace: str, label_selector: str = "") -> list[str]:
        """What a kubelet would report for every live pod in NAMESPACE not yet Ready: phase
        Running, its containers running and ready, conditions Initialized/ContainersReady/Ready
        True; written through the status subresource. No node runs them (none exists): the
        scheduler still reports them unschedulable, which a Deployment does not look at.
        Returns the names of the pods marked."""
        from kubernetes import client

        with self.api_client() as api:
            core: Any = client.CoreV1Api(api)
            pods = core.list_namespaced_pod(namespace, label_selector=label_selector).items
            marked: list[str] = []
            for pod in pods:
                if pod.metadata.deletion_timestamp is not None:
                    continue
                if pod.status.phase in ("Succeeded", "Failed"):
                    continue
                conds = {c.type: c.status for c in (pod.status.conditions or [])}
                if pod.status.phase == "Running" and conds.get("Ready") == "True":
                    continue
                core.patch_namespaced_pod_status(
                    pod.metadata.name, namespace, self._ready_status(pod)
                )
                marked.append(pod.metadata.name)
            return marked

    @staticmethod
    def _ready_status(pod: Any) -> dict[str, Any]:
        now = _now()
        containers = [
            {
                "name": c.name,
                "image": c.image,
                "imageID": f"realkube://{c.image}",
                "containerID": f"realkube://{uuid.uuid4().hex}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod.spec.containers
        ]
        conditions = [
            {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            for t in ("Initialized", "ContainersReady", "Ready")
        ]
        return {
            "status": {
                "phase": "Running",
                "startTime": now,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "podIPs": [{"ip": "127.0.0.1"}],
                "conditions": conditions,
                "containerStatuses": containers,
            }
        }

    def wait(
        self, what: str, check: Callable[[], bool], timeout: float = 60, every: float = 0.25
    ) -> None:
        """Poll CHECK until true; fail naming WHAT (and the controller-manager's log tail)."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what}: not so after {timeout:.0f}s\n"
                    f"--- kube-controller-manager log ---\n{self.logs('kube-controller-manager')}",
                    pytrace=False,
                )
            time.sleep(every)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def _service_account_keys(workdir: Path) -> tuple[Path, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private, public = workdir / "sa.key", workdir / "sa.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    private.chmod(0o600)
    return private, public


def _kubeconfig(server: str, ca_file: Path, token: str) -> str:
    ca = base64.b64encode(ca_file.read_bytes()).decode()
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: realkube\n  cluster:\n    server: {server}\n"
        f"    certificate-authority-data: {ca}\n"
        "users:\n- name: admin\n  user:\n"
        f"    token: {token}\n"
        "contexts:\n- name: realkube\n  context:\n    cluster: realkube\n    user: admin\n"
        "current-context: realkube\n"
    )


def _start(kube: RealKube, name: str, args: list[str]) -> _Proc:
    log = kube.workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [str(tool(name)), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=kube.workdir,
        )
    proc = _Proc(name, popen, log)
    kube.procs.append(proc)
    return proc


def _wait_until(proc: _Proc, what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not after {STARTUP_TIMEOUT:.0f}s:\n{proc.tail()}")
        time.sleep(0.1)


def start_cluster(workdir: Path) -> RealKube:
    """Start etcd, kube-apiserver, kube-controller-manager and kube-scheduler in WORKDIR."""
    for name in CONTROL_PLANE:
        tool(name)
    token = uuid.uuid4().hex
    etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
    certs = workdir / "certs"
    certs.mkdir()
    kube = RealKube(
        workdir=workdir,
        server=f"https://127.0.0.1:{api_port}",
        token=token,
        kubeconfig=workdir / "kubeconfig",
        ca_file=certs / "apiserver.crt",
    )
    try:
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        etcd = _start(
            kube,
            "etcd",
            [
                "--name=realkube",
                f"--data-dir={workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=realkube={peer_url}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        _wait_until(
            etcd,
            "etcd healthy",
            lambda: b"true" in urllib.request.urlopen(f"{etcd_url}/health", timeout=1).read(),
        )

        sa_key, sa_pub = _service_account_keys(workdir)
        audit_policy = workdir / "audit-policy.yaml"
        audit_policy.write_text(AUDIT_POLICY)
        kube.audit_log = workdir / "audit.log"
        tokens = workdir / "tokens.csv"
        tokens.write_text(f'{token},realkube-admin,realkube-admin,"system:masters"\n')
        tokens.chmod(0o600)
        api = _start(
            kube,
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--cert-dir={certs}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=Node,RBAC",
                "--anonymous-auth=false",
                f"--service-account-key-file={sa_pub}",
                f"--service-account-signing-key-file={sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--api-audiences=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--endpoint-reconciler-type=none",  # 127.0.0.1 is no valid Endpoints address
                "--profiling=false",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={kube.audit_log}",
                "--audit-log-format=json",
                "--v=1",
            ],
        )

        def api_ready() -> bool:
            if not kube.ca_file.exists():
                return False
            status, _ = kube.request("/readyz", timeout=2)
            return status == 200

        _wait_until(api, "kube-apiserver ready", api_ready)
        kube.kubeconfig.write_text(_kubeconfig(kube.server, kube.ca_file, token))
        kube.kubeconfig.chmod(0o600)
        import json

        _, body = kube.request("/version")
        kube.version = str(json.loads(body)["gitVersion"])
        common = [
            f"--kubeconfig={kube.kubeconfig}",
            f"--authentication-kubeconfig={kube.kubeconfig}",
            f"--authorization-kubeconfig={kube.kubeconfig}",
            "--authentication-skip-lookup=true",  # no client CA: nothing to look up
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            "--port=0",
            "--profiling=false",
            "--v=1",
        ]
        _start(
            kube,
            "kube-controller-manager",
            [
                *common,
                f"--secure-port={free_port()}",
                f"--cert-dir={workdir / 'cm-certs'}",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={kube.ca_file}",
                "--use-service-account-credentials=false",
                "--controllers=*,-csrsigning,-nodeipam",
                "--concurrent-deployment-syncs=5",
            ],
        )
        _start(
            kube,
            "kube-scheduler",
            [*common, f"--secure-port={free_port()}", f"--cert-dir={workdir / 'sched-certs'}"],
        )
        for proc in kube.procs[2:]:
            time.sleep(0.2)
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.tail()}")
        return kube
    except BaseException:
        kube.stop()
        raise


@pytest.fixture(scope="session")
def real_kube() -> Iterator[RealKube]:
    """A real control plane for the session (one per xdist worker), torn down at its end."""
    for name in CONTROL_PLANE:
        tool(name)
    workdir = Path(tempfile.mkdtemp(prefix="envplane-realkube-", dir="/tmp"))
    try:
        kube = start_cluster(workdir)
    except RuntimeError as err:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"real Kubernetes control plane did not start: {err}", pytrace=False)
    try:
        yield kube
    finally:
        kube.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class RealTools:
    """terraform, helm and kubectl first on PATH (bin), HOME a temp dir (home)."""

    bin: Path
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(extra)
        return env

    def run(
        self,
        *argv: str,
        cwd: Path | None = None,
        timeout: float = 300,
        check: bool = True,
        **extra: str,
    ) -> subprocess.CompletedProcess[str]:
        """Run a tool found on this PATH; with check, a non-zero exit fails the test with its
        output."""
        result = subprocess.run(
            list(argv),
            cwd=cwd,
            env=self.env(**extra),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{' '.join(argv)} exited {result.returncode}\n--- stdout ---\n{result.stdout}"
                f"\n--- stderr ---\n{result.stderr}",
                pytrace=False,
            )
        return result


@pytest.fixture
def real_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RealTools:
    """The real terraform, helm and kubectl for one test: links in a temp bin dir first on
    PATH, HOME a temp dir with an empty Terraform CLI config, and the drivers' overrides
    (ENVPLANE_TERRAFORM/ENVPLANE_HELM) and the machine's tool settings cleared."""
    bindir, home = tmp_path / "realtools-bin", tmp_path / "realtools-home"
    bindir.mkdir()
    home.mkdir()
    for name in CLIS:
        (bindir / name).symlink_to(tool(name).resolve())
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("HOME", str(home))
    for key in list(os.environ):
        if key.startswith(("TF_", "HELM_")) or key in (
            "KUBECONFIG",
            "ENVPLANE_TERRAFORM",
            "ENVPLANE_HELM",
            "XDG_CONFIG_HOME",
            "XDG_CACHE_HOME",
            "XDG_DATA_HOME",
        ):
            monkeypatch.delenv(key)
    rc = home / ".terraformrc"
    rc.write_text("")
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(rc))
    monkeypatch.setenv("TF_IN_AUTOMATION", "1")
    monkeypatch.setenv("CHECKPOINT_DISABLE", "1")  # no version check call home
    for name in CLIS:
        assert shutil.which(name) == str(bindir / name)
    return RealTools(bindir, home)


@pytest.fixture
def real_kube_env(
    real_kube: RealKube, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> RealKube:
    """envplane's Kubernetes driver (ENVPLANE_KUBECONFIG) and helm/kubectl (KUBECONFIG) pointed
    at the real control plane for one test; rollout polls every 0.2 s."""
    if "real_tools" in request.fixturenames:
        request.getfixturevalue("real_tools")  # first: it clears KUBECONFIG
    monkeypatch.setenv("ENVPLANE_KUBECONFIG", str(real_kube.kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(real_kube.kubeconfig))
    monkeypatch.delenv("ENVPLANE_KUBE_CONTEXT", raising=False)
    monkeypatch.setenv("ENVPLANE_KUBE_POLL", "0.2")
    return real_kube
