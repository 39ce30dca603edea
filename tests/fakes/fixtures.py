"""Fixtures for the cloud target's tests: a real moto server process, the stand-in terraform
and helm first on PATH, the fake Kubernetes API, and an EnvContext in a temp directory.

Import the fixtures by name into a test module (`from tests.fakes.fixtures import aws_env`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from envplane.targets.base import EnvContext
from tests.fakes.kubeapi import FakeKube, kubeconfig

FAKES = Path(__file__).resolve().parent
MOTO = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    """One moto server process per test worker, on loopback, stopped at the end."""
    if not MOTO.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.fixture
def aws_env(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """boto3 (and anything else using the AWS SDK chain) talks to the moto server, fresh."""
    urllib.request.urlopen(
        urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST"), timeout=5
    ).close()
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    return moto_url


@dataclass
class Tools:
    """The stand-in terraform and helm: what they were asked to do, and their knobs."""

    tf_home: Path
    helm_home: Path
    monkeypatch: pytest.MonkeyPatch

    def calls(self, tool: str = "terraform") -> list[dict[str, object]]:
        home = self.tf_home if tool == "terraform" else self.helm_home
        log = home / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def commands(self, tool: str = "terraform") -> list[list[str]]:
        return [list(c["argv"]) for c in self.calls(tool)]  # type: ignore[call-overload]

    def fail(self, tool: str, mode: str) -> None:
        name = "FAKE_TF_FAIL" if tool == "terraform" else "FAKE_HELM_FAIL"
        self.monkeypatch.setenv(name, mode)

    def outputs(self, values: dict[str, str]) -> None:
        path = self.tf_home / "outputs.json"
        path.write_text(json.dumps(values))
        self.monkeypatch.setenv("FAKE_TF_OUTPUTS", str(path))

    def applied(self) -> list[str]:
        state = self.tf_home / "state.json"
        return list(json.loads(state.read_text())["resources"]) if state.exists() else []


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tools:
    tf_home, helm_home = tmp_path / "tf", tmp_path / "helm"
    tf_home.mkdir()
    helm_home.mkdir()
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
    for name in ("ENVPLANE_TERRAFORM", "ENVPLANE_HELM", "FAKE_TF_FAIL", "FAKE_HELM_FAIL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FAKE_TF_HOME", str(tf_home))
    monkeypatch.setenv("FAKE_HELM_HOME", str(helm_home))
    # /usr/local/bin/terraform may exist but cannot init here: the fake must be the one found.
    assert shutil.which("terraform") == str(FAKES / "terraform")
    assert shutil.which("helm") == str(FAKES / "helm")
    return Tools(tf_home, helm_home, monkeypatch)


@pytest.fixture
def fake_kube() -> Iterator[FakeKube]:
    fake = FakeKube(ready_after=2).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def kube_env(fake_kube: FakeKube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKube:
    """ENVPLANE_KUBECONFIG names the fake API; rollout polls are quick."""
    fake_kube.token = "fake-token"
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig(fake_kube.url, "fake-token"))
    monkeypatch.setenv("ENVPLANE_KUBECONFIG", str(path))
    monkeypatch.delenv("ENVPLANE_KUBE_CONTEXT", raising=False)
    monkeypatch.setenv("ENVPLANE_KUBE_POLL", "0.01")
    return fake_kube


@pytest.fixture
def staging_made(aws_env: str, tools: Tools, kube_env: FakeKube) -> Tools:
    """What `terraform apply` would have made in AWS for the example's staging, made in moto
    (EKS cluster, the RDS and Redis secrets), and its outputs handed to the stand-in."""
    import boto3

    boto3.client("eks", region_name=REGION).create_cluster(
        name="sunday-staging",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    sm = boto3.client("secretsmanager", region_name=REGION)
    rds = sm.create_secret(
        Name="rds!db-staging", SecretString=json.dumps({"username": "app", "password": "pg-pw"})
    )
    redis = sm.create_secret(Name="sunday-staging/redis-auth-1", SecretString="redis-pw")
    tools.outputs(
        {
            "cluster_name": "sunday-staging",
            "cluster_endpoint": "https://ABC.gr7.us-east-1.eks.amazonaws.com",
            "rds_address": "sunday-staging.c9akciq32.us-east-1.rds.amazonaws.com",
            "rds_master_secret_arn": rds["ARN"],
            "redis_address": "master.sunday-staging.abc123.use1.cache.amazonaws.com",
            "redis_auth_secret_arn": redis["ARN"],
            "storage_bucket": "sunday-staging-storage",
        }
    )
    return tools


@dataclass
class Ctx:
    ctx: EnvContext
    messages: list[str] = field(default_factory=list)


@pytest.fixture
def env_ctx(tmp_path: Path) -> Ctx:
    messages: list[str] = []
    secrets = {"grafana-admin-password": "grafana-secret-value"}
    ctx = EnvContext(
        name="staging",
        project="sunday",
        env_dir=tmp_path / "home" / "environments" / "staging",
        ports={},
        secret=lambda name: secrets[name],
        matrix_dir=tmp_path,
        progress=messages.append,
    )
    return Ctx(ctx, messages)
