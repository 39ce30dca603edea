"""The cloud lifecycle through the real CLI against the real tools (tests/realkube.py): a real
kube-apiserver 1.20 (+ controller-manager, scheduler; the node stand-in marks pods ready), real
helm 3.17 and real terraform 1.15 on PATH, boto3 and Terraform's S3 backend on the moto server.

What is stood in, and only there (docs/cloud.md, "Against the real tools"):
* the AWS and random providers: `tests/fakes/tfprovider/terraform`, first on PATH, rewrites the
  rendered *.tf.json so each `aws_*`/`random_*` resource and data source is a `terraform_data`
  carrying the attributes the outputs read, then execs the real terraform; init gets the moto
  endpoints for the S3 backend (state in moto's S3, lock in moto's DynamoDB);
* the kube-prometheus-stack chart: a small chart of that name and version, served to the real
  helm as https://prometheus-community.github.io/helm-charts (`tests/fakes/chartrepo.py`);
* AWS itself: moto (the EKS cluster record ACTIVE, the RDS and Redis secrets); the driver
  reaches the real API server through ENVPLANE_KUBECONFIG, not an EKS token."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Project
from tests.fakes import chartrepo

if TYPE_CHECKING:  # the fixtures come through pytest_plugins (not imported: assert rewriting)
    from tests.realkube import RealKube, RealTools

pytest_plugins = ("tests.fakes.fixtures", "tests.realkube")
pytestmark = pytest.mark.realtools

TFPROVIDER = Path(__file__).resolve().parent / "fakes" / "tfprovider"
ENV = "staging"
NS = "sunday-staging"
DEV = "development"
DEV_NS = "sunday-development"
MONITORING = "monitoring"
CLUSTER = "sunday-staging"
REGION = "us-east-1"
STATE_BUCKET = "sunday-terraform-state"
LOCK_TABLE = "sunday-terraform-locks"
STATE_KEY = "environments/staging/terraform.tfstate"
CHART_VERSION = "69.4.1"
DEV_RDS = "sunday-development.x1y2z3.us-east-1.rds.amazonaws.com"
SELECTOR = "envplane.io/environment=staging"
# Every kind the environment is made of, as kubectl names them, to list what is left.
KINDS = (
    "deployments,replicasets,pods,services,configmaps,secrets,networkpolicies,"
    "poddisruptionbudgets,serviceaccounts"
)


@dataclass
class Cloud:
    """One test's cloud: the real tools and cluster, moto, and what the stand-ins recorded."""

    project: Project
    kube: RealKube
    tools: RealTools
    moto: str
    tf_log: Path
    charts: chartrepo.ChartRepo
    nodes: NodeStandIn

    def envplane(self, *args: str, timeout: float = 600) -> str:
        result = self.project.run(*args, timeout=timeout)
        assert result.returncode == 0, (
            f"envplane {' '.join(args)} exited {result.returncode}\n--- stdout ---\n"
            f"{result.stdout}\n--- stderr ---\n{result.stderr}"
        )
        return result.stdout

    def terraform_calls(self) -> list[list[str]]:
        if not self.tf_log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.tf_log.read_text().splitlines()]

    def kubectl(self, *args: str) -> Any:
        argv = ("kubectl", *args, "-o", "json", "--show-managed-fields")
        return json.loads(self.tools.run(*argv).stdout)

    def helm_releases(self, namespace: str) -> list[dict[str, Any]]:
        out = self.tools.run("helm", "list", "-n", namespace, "-a", "-o", "json").stdout
        return list(json.loads(out))

    def state(self) -> dict[str, Any]:
        import boto3

        body = boto3.client("s3").get_object(Bucket=STATE_BUCKET, Key=STATE_KEY)["Body"]
        return dict(json.loads(body.read()))

    def locks(self) -> list[str]:
        import boto3

        items = boto3.client("dynamodb").scan(TableName=LOCK_TABLE).get("Items", [])
        return sorted(str(i["LockID"]["S"]) for i in items)


@dataclass
class NodeStandIn:
    """Marks the environment's pods ready as they appear (what kubelets would report), while
    envplane and helm wait for rollouts."""

    kube: RealKube
    namespaces: tuple[str, ...]
    marked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _paused: threading.Event = field(default_factory=threading.Event)
    _busy: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        from kubernetes.client.exceptions import ApiException

        while not self._stop.wait(0.3):
            with self._busy:
                if self._paused.is_set():
                    continue
                for ns in self.namespaces:
                    try:
                        self.marked += self.kube.mark_pods_ready(ns)
                    except ApiException as exc:
                        if exc.status not in (404, 409, 422):  # a pod gone or changed meanwhile
                            self.errors.append(f"{ns}: {exc.status} {exc.reason}")
                    except Exception as exc:  # reported by the test, not lost
                        self.errors.append(f"{ns}: {exc!r}")

    def pause(self) -> None:
        """No pod is marked from here on (a round under way finishes first): a node whose
        kubelet stopped reporting."""
        self._paused.set()
        with self._busy:
            pass

    def resume(self) -> None:
        self._paused.clear()

    def start(self) -> NodeStandIn:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _aws_made(kube: RealKube) -> dict[str, dict[str, Any]]:
    """What AWS would hold once Terraform applied (made in moto, as tests/fakes/fixtures.py's
    staging_made does), and the provider-computed attributes that point at it: the values
    file of tests/fakes/tfprovider."""
    import boto3

    boto3.client("s3").create_bucket(Bucket=STATE_BUCKET)
    boto3.client("dynamodb").create_table(
        TableName=LOCK_TABLE,
        KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("eks").create_cluster(
        name=CLUSTER,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    sm = boto3.client("secretsmanager")
    rds = sm.create_secret(
        Name="rds!db-staging", SecretString=json.dumps({"username": "app", "password": "pg-pw"})
    )
    redis = sm.create_secret(Name="sunday-staging/redis-auth-1", SecretString="redis-pw")
    ca = base64.b64encode(kube.ca_file.read_bytes()).decode()
    return {
        f"aws_eks_cluster.{CLUSTER}": {
            "endpoint": kube.server,
            "certificate_authority": [{"data": ca}],
        },
        "aws_db_instance.main": {
            "address": "sunday-staging.c9akciq32.us-east-1.rds.amazonaws.com",
            "master_user_secret": [{"secret_arn": rds["ARN"], "secret_status": "active"}],
        },
        "aws_secretsmanager_secret.redis_auth": {"arn": redis["ARN"]},
        "aws_s3_bucket.storage": {"id": "sunday-staging-storage"},
    }


@pytest.fixture
def cloud(
    project: Project,
    real_tools: RealTools,
    real_kube_env: RealKube,
    aws_env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Cloud]:
    kube = real_kube_env
    # A namespace left by an earlier test of this session's cluster would not be ours.
    from kubernetes import client

    with kube.api_client() as api:
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert not {NS, DEV_NS, MONITORING} & names, "left over from another test"

    values = tmp_path / "tfprovider-values.json"
    values.write_text(json.dumps(_aws_made(kube)))
    tf_log = tmp_path / "tfprovider-calls.jsonl"
    monkeypatch.setenv("PATH", f"{TFPROVIDER}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ENVPLANE_TFPROVIDER_TERRAFORM", str(real_tools.bin / "terraform"))
    monkeypatch.setenv("ENVPLANE_TFPROVIDER_VALUES", str(values))
    monkeypatch.setenv("ENVPLANE_TFPROVIDER_LOG", str(tf_log))
    charts = chartrepo.serve(
        str(real_tools.bin / "helm"), tmp_path / "charts", CHART_VERSION, dict(os.environ)
    )
    for key, value in charts.env().items():
        monkeypatch.setenv(key, value)
    nodes = NodeStandIn(kube, (NS, DEV_NS, MONITORING)).start()
    try:
        yield Cloud(project, kube, real_tools, aws_env, tf_log, charts, nodes)
    finally:
        nodes.stop()
        charts.stop()
        _cleanup(kube)


def _cleanup(kube: RealKube) -> None:
    """Whatever a test left on the session's cluster goes (awaited up to 60 s, so the next
    test's check for leftovers holds; no pod is on a node, so none has to terminate)."""
    import time

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    ours = {NS, DEV_NS, MONITORING}
    with kube.api_client() as api:
        core: Any = client.CoreV1Api(api)
        for ns in sorted(ours):
            with contextlib.suppress(ApiException):
                core.delete_namespace(ns)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not ours & {n.metadata.name for n in core.list_namespace().items}:
                break
            time.sleep(0.5)


def _clients(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The writes not made by the control plane's own controllers (they share the token)."""
    control = ("kube-controller-manager/", "kube-scheduler/")
    return [e for e in events if not str(e.get("userAgent", "")).startswith(control)]


def _managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (str(f["manager"]), str(f["operation"])) for f in obj["metadata"].get("managedFields", [])
    )


@pytest.mark.kube
def test_create_update_destroy_against_the_real_api_server_helm_and_terraform(
    cloud: Cloud,
) -> None:
    kube, project = cloud.kube, cloud.project
    project.edit_matrix(
        "      backend:\n        replicas: 2", "      backend:\n        replicas: 1"
    )

    # --- create ------------------------------------------------------------------------
    cloud.envplane("create", ENV, "--target", "cloud")

    # Terraform: the driver's own command sequence, each run by the real terraform.
    calls = cloud.terraform_calls()
    commands = [next(a for a in argv if not a.startswith("-")) for argv in calls]
    assert commands[:4] == ["init", "plan", "apply", "output"], commands
    init = calls[0]
    assert f"-backend-config=key={STATE_KEY}" in init
    assert f"-backend-config=bucket={STATE_BUCKET}" in init
    assert f"-backend-config=dynamodb_table={LOCK_TABLE}" in init
    assert "-json" in calls[1] and "-out=tfplan" in calls[1]
    workdir = project.home / "environments" / ENV / "terraform"
    assert not (workdir / "tfplan").exists()  # the saved plan is removed once applied
    # The originals are the rendered files; what ran is the stand-in's rewrite of them.
    originals = sorted(p.name for p in (workdir / ".tfprovider" / "original").glob("*.tf.json"))
    assert originals == sorted(p.name for p in workdir.glob("*.tf.json"))
    assert "aws_eks_cluster" in (workdir / ".tfprovider" / "original" / "eks.tf.json").read_text()
    # The state is in moto's S3 under the seed's key; the lock in DynamoDB was released.
    state = cloud.state()
    kinds = {r["type"] for r in state["resources"]}
    assert kinds == {"terraform_data"}
    names = {r["name"] for r in state["resources"]}
    assert {
        f"aws_eks_cluster__{CLUSTER}",
        "aws_db_instance__main",
        "random_password__redis_auth",
    } <= names
    assert state["outputs"]["cluster_endpoint"]["value"] == kube.server
    assert state["outputs"]["cluster_name"]["value"] == CLUSTER
    assert not [lock for lock in cloud.locks() if not lock.endswith("-md5")]
    assert not (workdir / "terraform.tfstate").exists()

    # Kubernetes: every object on the real API server, at versions it serves.
    namespace = cloud.kubectl("get", "namespace", NS)
    assert namespace["metadata"]["labels"]["envplane.io/environment"] == ENV
    config_maps = cloud.kubectl("get", "configmaps", "-n", NS, "-l", SELECTOR)["items"]
    assert {c["metadata"]["name"] for c in config_maps} == {
        "app-config",
        "backend-config",
        "frontend-config",
    }
    deployments = {
        d["metadata"]["name"]: d
        for d in cloud.kubectl("get", "deployments", "-n", NS, "-l", SELECTOR)["items"]
    }
    assert set(deployments) == {"backend-deployment", "frontend-deployment"}
    backend = deployments["backend-deployment"]
    assert backend["apiVersion"] == "apps/v1"
    assert backend["spec"]["replicas"] == 1
    assert backend["status"]["readyReplicas"] == 1  # envplane waited for the rollout
    assert ("envplane", "Apply") in _managers(backend)
    services = cloud.kubectl("get", "services", "-n", NS, "-l", SELECTOR)["items"]
    assert {s["metadata"]["name"] for s in services} == {"backend-service", "frontend-service"}
    policies = cloud.kubectl("get", "networkpolicies", "-n", NS, "-l", SELECTOR)["items"]
    assert {p["metadata"]["name"] for p in policies} == {
        "default-deny",
        "allow-backend-ingress",
        "allow-frontend-ingress",
    }
    secret = cloud.kubectl("get", "secrets", "-n", NS, "-l", SELECTOR)["items"]
    assert len(secret) == 1  # the app Secret, made from the moto secrets
    # PodDisruptionBudget: policy/v1 only from 1.21; a 1.20 server serves policy/v1beta1.
    served = cloud.tools.run("kubectl", "api-versions").stdout.split()
    assert "policy/v1beta1" in served and "policy/v1" not in served
    pdbs = cloud.kubectl("get", "poddisruptionbudgets", "-n", NS, "-l", SELECTOR)["items"]
    assert {p["metadata"]["name"] for p in pdbs} == {"frontend-pdb"}  # one replica: no PDB
    pdb_writes = kube.audit(resource="poddisruptionbudgets", namespace=NS, verb="patch")
    assert {e["objectRef"]["apiVersion"] for e in pdb_writes} == {"v1beta1"}

    # Helm: the release, by the real helm, in the monitoring namespace.
    releases = cloud.helm_releases(MONITORING)
    assert [(r["name"], r["status"], r["chart"]) for r in releases] == [
        ("prometheus", "deployed", f"kube-prometheus-stack-{CHART_VERSION}")
    ]
    given = cloud.kubectl("get", "configmap", "prometheus-kube-prometheus-values", "-n", MONITORING)
    assert json.loads(given["data"]["values.json"])["grafana"]["admin"]["existingSecret"] == (
        "grafana-admin"
    )
    cloud.kubectl("get", "secret", "grafana-admin", "-n", MONITORING)
    assert "GET /helm-charts/index.yaml" in cloud.charts.requests
    assert not cloud.charts.refused

    info = json.loads(cloud.envplane("info", ENV, "-o", "json"))
    assert info["status"] == "ready"
    assert info["endpoints"]["kubernetes"] == kube.server  # Terraform's output, via the stand-in
    assert info["endpoints"]["storage"] == "s3://sunday-staging-storage"
    live = {k: (v["ready"], v["desired"]) for k, v in info["services"].items()}
    assert live == {"backend": (1, 1), "frontend": (2, 2)}  # read from the real API server

    # --- update: replicas 1 -> 2 ----------------------------------------------------------
    before = kube.audit(resource="deployments", namespace=NS, name="backend-deployment")
    frontend_before = cloud.kubectl("get", "deployment", "frontend-deployment", "-n", NS)
    project.edit_matrix(
        "      backend:\n        replicas: 1", "      backend:\n        replicas: 2"
    )
    cloud.envplane("update", ENV)
    writes = kube.audit(resource="deployments", namespace=NS, name="backend-deployment")[
        len(before) :
    ]
    by_envplane = _clients(writes)
    assert [(e["verb"], e["responseStatus"]["code"]) for e in by_envplane] == [("patch", 200)]
    assert "fieldManager=envplane" in by_envplane[0]["requestURI"]
    backend = cloud.kubectl("get", "deployment", "backend-deployment", "-n", NS)
    assert backend["spec"]["replicas"] == 2
    assert backend["metadata"]["generation"] == 2
    assert backend["status"]["readyReplicas"] == 2
    assert ("envplane", "Apply") in _managers(backend)
    assert [m for m, _ in _managers(backend) if m != "kube-controller-manager"] == ["envplane"]
    info = json.loads(cloud.envplane("info", ENV, "-o", "json"))
    assert (info["services"]["backend"]["ready"], info["services"]["backend"]["desired"]) == (2, 2)
    # Two replicas now: the backend's PDB appears, again through policy/v1beta1.
    pdbs = cloud.kubectl("get", "poddisruptionbudgets", "-n", NS, "-l", SELECTOR)["items"]
    assert {p["metadata"]["name"] for p in pdbs} == {"backend-pdb", "frontend-pdb"}
    pdb_writes = kube.audit(resource="poddisruptionbudgets", namespace=NS, name="backend-pdb")
    assert [(e["verb"], e["objectRef"]["apiVersion"]) for e in _clients(pdb_writes)] == [
        ("patch", "v1beta1")
    ]
    replica_sets = cloud.kubectl("get", "replicasets", "-n", NS)["items"]
    owned = [
        r
        for r in replica_sets
        if r["metadata"]["ownerReferences"][0]["name"] == "backend-deployment"
    ]
    assert len(owned) == 1  # a scale, not a new template
    # The update re-applies the workloads resource whole: the unchanged frontend's apply is a
    frontend = cloud.kubectl("get", "deployment", "frontend-deployment", "-n", NS)
    # no-op on the server: the same spec and generation. (A 1.20 server still writes it: the
    # time of envplane's managedFields entry is renewed, so resourceVersion moves.)
    assert frontend["metadata"]["generation"] == frontend_before["metadata"]["generation"]
    assert frontend["spec"] == frontend_before["spec"]
    assert _managers(frontend) == _managers(frontend_before)

    # --- destroy ------------------------------------------------------------------------
    cloud.envplane("destroy", ENV, "--force")
    commands = [next(a for a in argv if not a.startswith("-")) for argv in cloud.terraform_calls()]
    assert "destroy" in commands
    assert cloud.state()["resources"] == []
    assert not [lock for lock in cloud.locks() if not lock.endswith("-md5")]
    namespaces = {n["metadata"]["name"] for n in cloud.kubectl("get", "namespaces")["items"]}
    assert NS not in namespaces and MONITORING not in namespaces
    assert cloud.helm_releases(MONITORING) == []
    left = cloud.kubectl("get", KINDS, "-A", "-l", SELECTOR)["items"]
    assert left == [], [f"{o['kind']}/{o['metadata']['name']}" for o in left]
    assert not (project.home / "environments" / ENV).exists()
    assert json.loads(cloud.envplane("info", ENV, "-o", "json"))["status"] == "destroyed"
    assert not cloud.nodes.errors


def _development_made(kube: RealKube, values: Path) -> None:
    """development's AWS beside staging's (its EKS cluster record and secrets in moto), and
    the provider values its Terraform gets: the same real API server, its own RDS host."""
    import boto3

    boto3.client("eks").create_cluster(
        name=DEV_NS,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
    )
    sm = boto3.client("secretsmanager")
    rds = sm.create_secret(
        Name="rds!db-development",
        SecretString=json.dumps({"username": "app", "password": "pg-dev-pw"}),
    )
    redis = sm.create_secret(Name="sunday-development/redis-auth-1", SecretString="redis-dev")
    made = json.loads(values.read_text())
    made[f"aws_eks_cluster.{DEV_NS}"] = made[f"aws_eks_cluster.{CLUSTER}"]
    made["aws_db_instance.main"] = {
        "address": DEV_RDS,
        "master_user_secret": [{"secret_arn": rds["ARN"], "secret_status": "active"}],
    }
    made["aws_secretsmanager_secret.redis_auth"] = {"arn": redis["ARN"]}
    made["aws_s3_bucket.storage"] = {"id": "sunday-development-storage"}
    values.write_text(json.dumps(made))


def _validate(cloud: Cloud, junit: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    result = cloud.project.run(
        "validate", ENV, "--level", "comprehensive", "-o", "json", "--junit", str(junit)
    )
    assert "Traceback" not in result.stderr, result.stderr
    report = json.loads(result.stdout)
    return result.returncode, {f"{c['category']}: {c['name']}": c for c in report["checks"]}


def _pods(cloud: Cloud, namespace: str, selector: str) -> list[dict[str, Any]]:
    return list(cloud.kubectl("get", "pods", "-n", namespace, "-l", selector)["items"])


@pytest.mark.kube
def test_validate_names_a_pod_not_ready_and_config_sync_rolls_dst_on_the_real_api_server(
    cloud: Cloud, tmp_path: Path
) -> None:
    """validate of staging while the node stand-in is paused: the ReplicaSet's new pod (one
    deleted) is Pending, and the applications area names it; once marked, the area passes.
    Then development in the same cluster, and `sync staging development --type config`."""
    from kubernetes import client

    kube = cloud.kube
    cloud.envplane("create", ENV, "--target", "cloud")

    # --- validate: a pod no node has reported on ------------------------------------------
    cloud.nodes.pause()
    backend = "app.kubernetes.io/name=backend"
    old = {p["metadata"]["name"] for p in _pods(cloud, NS, backend)}
    with kube.api_client() as api:
        client.CoreV1Api(api).delete_namespaced_pod(sorted(old)[0], NS)

    def new_pods() -> list[str]:
        return [
            p["metadata"]["name"]
            for p in _pods(cloud, NS, backend)
            if p["metadata"]["name"] not in old
        ]

    kube.wait("the ReplicaSet's new backend pod", lambda: bool(new_pods()))
    (pending,) = new_pods()
    junit = tmp_path / "validate.xml"
    code, checks = _validate(cloud, junit)
    assert code == 1
    assert checks["applications: pods running and ready"]["status"] == "fail"
    assert checks["applications: pods running and ready"]["detail"].startswith(
        f"1 of 4 pod(s) not Running and Ready: {pending} (Pending); "
        f"look at: kubectl -n {NS} describe pod {pending}"
    )
    assert checks["applications: deployment backend-deployment"]["detail"].startswith(
        "Deployment backend-deployment: 1/2 ready"
    )
    assert checks["applications: deployment frontend-deployment"]["status"] == "pass"
    suites = {s.get("name"): s for s in ET.parse(junit).getroot()}
    assert suites["applications"].get("failures") == "2"
    assert pending in ET.tostring(suites["applications"], encoding="unicode")

    cloud.nodes.resume()
    kube.wait(f"{pending} marked ready", lambda: pending in cloud.nodes.marked)
    kube.wait(
        "backend-deployment 2/2 ready",
        lambda: (
            cloud.kubectl("get", "deployment", "backend-deployment", "-n", NS)["status"].get(
                "readyReplicas"
            )
            == 2
        ),
    )
    code, checks = _validate(cloud, junit)
    assert code == 1  # the areas that cannot pass here (below)
    status = {k: c["status"] for k, c in checks.items()}
    assert checks["applications: pods running and ready"]["detail"] == (
        f"4 pod(s) in {NS} Running and Ready"
    )
    assert {k: v for k, v in status.items() if k.startswith("applications:")} == {
        "applications: deployment backend-deployment": "pass",
        "applications: deployment frontend-deployment": "pass",
        "applications: pods running and ready": "pass",
    }
    suites = {s.get("name"): s for s in ET.parse(junit).getroot()}
    assert suites["applications"].get("failures") == "0"
    # What passes for real besides: the EKS record in moto, the NetworkPolicies and the Helm
    # release on the real server, the app Secret and the ConfigMap search.
    for name in (
        "infrastructure: eks cluster active",
        "networking: network policies",
        "monitoring: helm release prometheus",
        "security: secrets in secrets manager",
        "security: app secret present",
        "security: no plaintext secret in a configmap",
    ):
        assert status[name] == "pass", (name, checks[name]["detail"])
    # What cannot (docs/cloud.md, "Against the real tools"): the node group, RDS, ElastiCache,
    # the bucket and the KMS key are terraform_data only, not in moto; no pod has an address
    # the Endpoints controller may publish (no node, a loopback pod IP), so no Service has an
    # endpoint and the service proxy answers 503; no load balancer controller.
    for name in (
        "infrastructure: node group general-purpose",
        "infrastructure: rds available",
        "infrastructure: elasticache available",
        "infrastructure: bucket",
        "networking: service backend-service has endpoints",
        "networking: service frontend-service has endpoints",
        "networking: load balancer address",
        "monitoring: prometheus ready",
        "security: kms key enabled",
        "security: rds storage encrypted",
        "security: elasticache encrypted",
        "smoke: api round trip",
    ):
        assert status[name] == "fail", (name, checks[name]["detail"])
    assert "-> 503 no endpoints available" in checks["smoke: api round trip"]["detail"]

    # --- sync config: staging -> development, both in this cluster -------------------------
    _development_made(kube, tmp_path / "tfprovider-values.json")
    cloud.envplane("create", DEV, "--target", "cloud")
    assert _data(cloud, DEV_NS, "app-config")["LOG_LEVEL"] == "debug"  # development's own
    staging_before = _snapshot(cloud, NS)
    dev_before = _snapshot(cloud, DEV_NS)
    mark = len(kube.audit())
    cloud.envplane("sync", ENV, DEV, "--type", "config")
    writes = [
        e
        for e in _clients(kube.audit()[mark:])
        if e["objectRef"].get("subresource") != "status"  # the node stand-in's
    ]

    # development's ConfigMaps hold staging's values with development's names and endpoints.
    app = _data(cloud, DEV_NS, "app-config")
    assert app["LOG_LEVEL"] == "info" and app["API_RATE_LIMIT"] == "1000"  # staging's
    assert app["DEPLOYMENT_ENVIRONMENT"] == "development"
    database = json.loads(_data(cloud, DEV_NS, "backend-config")["database.json"])
    assert database["connection"]["host"] == DEV_RDS  # development's Terraform output
    for name in ("app-config", "backend-config", "frontend-config"):
        cm = cloud.kubectl("get", "configmap", name, "-n", DEV_NS)
        assert _managers(cm) == [("envplane", "Apply")], name
    cm_writes = [e for e in writes if e["objectRef"]["resource"] == "configmaps"]
    assert cm_writes and all(e["objectRef"]["namespace"] == DEV_NS for e in cm_writes)
    assert all("fieldManager=envplane" in e["requestURI"] for e in cm_writes)
    assert not [e for e in cm_writes if "force=true" in e["requestURI"]]  # no takeover

    # Only the backend reads app-config (the one ConfigMap the two templates differ in): a
    # restart by its pod-template annotation, a rollout into a new ReplicaSet, never a delete.
    restarts = [e for e in writes if "fieldManager=envplane-restart" in e["requestURI"]]
    assert [(e["verb"], e["objectRef"]["name"]) for e in restarts] == [
        ("patch", "backend-deployment")
    ]
    assert not [e for e in writes if e["verb"] in ("delete", "deletecollection")]
    dev_after = _snapshot(cloud, DEV_NS)
    restarted = cloud.kubectl("get", "deployment", "backend-deployment", "-n", DEV_NS)
    assert "envplane.io/restartedAt" in restarted["spec"]["template"]["metadata"]["annotations"]
    assert ("envplane-restart", "Apply") in _managers(restarted)
    assert dev_after["generation"]["backend-deployment"] == (
        dev_before["generation"]["backend-deployment"] + 1
    )
    assert restarted["status"]["readyReplicas"] == restarted["spec"]["replicas"]  # waited for
    assert restarted["status"]["updatedReplicas"] == restarted["spec"]["replicas"]
    new_sets = (
        dev_after["replicasets"]["backend-deployment"]
        - dev_before["replicasets"]["backend-deployment"]
    )
    assert len(new_sets) == 1, dev_after["replicasets"]
    assert (
        dev_after["generation"]["frontend-deployment"]
        == (dev_before["generation"]["frontend-deployment"])
    )
    assert (
        dev_after["replicasets"]["frontend-deployment"]
        == (dev_before["replicasets"]["frontend-deployment"])
    )
    # staging is only read.
    assert not [e for e in writes if e["objectRef"].get("namespace") == NS]
    assert _snapshot(cloud, NS) == staging_before
    assert not cloud.nodes.errors


def _data(cloud: Cloud, namespace: str, name: str) -> dict[str, str]:
    return dict(cloud.kubectl("get", "configmap", name, "-n", namespace)["data"])


def _snapshot(cloud: Cloud, namespace: str) -> dict[str, Any]:
    """What a sync may change in NAMESPACE: ConfigMaps (data, resourceVersion), Deployments'
    generation and pod template, and each Deployment's ReplicaSets."""
    maps = cloud.kubectl("get", "configmaps", "-n", namespace, "-l", "envplane.io/environment")
    deployments = cloud.kubectl("get", "deployments", "-n", namespace)["items"]
    sets: dict[str, set[str]] = {d["metadata"]["name"]: set() for d in deployments}
    for rs in cloud.kubectl("get", "replicasets", "-n", namespace)["items"]:
        sets[rs["metadata"]["ownerReferences"][0]["name"]].add(rs["metadata"]["name"])
    return {
        "configmaps": {
            c["metadata"]["name"]: (c["metadata"]["resourceVersion"], c["data"])
            for c in maps["items"]
        },
        "generation": {d["metadata"]["name"]: d["metadata"]["generation"] for d in deployments},
        "templates": {d["metadata"]["name"]: d["spec"]["template"] for d in deployments},
        "replicasets": sets,
    }


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_the_provider_stand_in_keeps_every_rendered_environment_valid_for_real_terraform(
    env: str, project: Project, real_tools: RealTools, tmp_path: Path
) -> None:
    """Every reference of each environment's rendered Terraform (the secondary-region provider
    alias of production included) survives the rewrite: the real terraform validates it."""
    out = tmp_path / "rendered"
    cloud_run = project.run("render", env, "--target", "cloud", "--out", str(out))
    assert cloud_run.returncode == 0, cloud_run.stderr
    work = out / "terraform"
    rendered = {p.name: p.read_text() for p in work.glob("*.tf.json")}
    wrapper = str(TFPROVIDER / "terraform")
    env_vars = {"ENVPLANE_TFPROVIDER_TERRAFORM": str(real_tools.bin / "terraform")}
    real_tools.run(wrapper, "init", "-backend=false", "-input=false", cwd=work, **env_vars)
    checked = json.loads(real_tools.run(wrapper, "validate", "-json", cwd=work, **env_vars).stdout)
    assert checked["valid"] is True, checked["diagnostics"]
    kept = work / ".tfprovider" / "original"
    assert {p.name: p.read_text() for p in kept.glob("*.tf.json")} == rendered
    for path in work.glob("*.tf.json"):
        doc = json.loads(path.read_text())
        assert set(doc.get("resource", {})) <= {"terraform_data"}, path.name
        assert "data" not in doc and "provider" not in doc, path.name
