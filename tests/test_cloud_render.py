"""Rendering for the cloud target: offline, deterministic, valid Kubernetes, the matrix honoured."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from envplane.errors import BadInput, MatrixError
from envplane.matrix import Matrix, load_matrix, load_matrix_text
from envplane.render.cloud import desired_cloud, rendered_files, write_rendered
from envplane.render.model import DesiredEnvironment
from tests.conftest import ENVPLANE, REPO

MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
ENVS = ("development", "staging", "production")
K8S = "1.31.0"  # pinned: the EKS version the Terraform files ask for (1.31)


@pytest.fixture(autouse=True)
def _no_backend_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVPLANE_TF_STATE_BUCKET", "ENVPLANE_TF_LOCK_TABLE", "ENVPLANE_TF_STATE_REGION"):
        monkeypatch.delenv(name, raising=False)


def edited(old: str, new: str, count: int = 1) -> Matrix:
    text = MATRIX.read_text()
    assert old in text, old
    return load_matrix_text(text.replace(old, new, count), str(MATRIX))


def spec(desired: DesiredEnvironment, key: str) -> dict[str, Any]:
    return dict(desired.resource(key).spec)


def tf(desired: DesiredEnvironment, name: str) -> dict[str, Any]:
    files = spec(desired, "terraform/infrastructure")["files"]
    return dict(json.loads(files[f"{name}.tf.json"]))


def resources(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    return dict(doc.get("resource", {}).get(kind, {}))


@pytest.mark.parametrize("env", ENVS)
def test_every_manifest_is_valid_kubernetes(env: str) -> None:
    desired = desired_cloud(load_matrix(MATRIX), env)
    manifests = spec(desired, "kubernetes/workloads")["manifests"]
    assert manifests[0]["kind"] == "Namespace"
    for manifest in manifests:
        kubernetes_validate.validate(manifest, K8S, strict=True)


def test_the_validator_does_reject_a_wrong_manifest() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    deployment = next(
        m for m in spec(desired, "kubernetes/workloads")["manifests"] if m["kind"] == "Deployment"
    )
    deployment["spec"]["replicaz"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S, strict=True)


def test_three_resources_in_dependency_order_with_plan_lists() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    assert [r.key for r in desired.resources] == [
        "terraform/infrastructure",
        "kubernetes/workloads",
        "helm/monitoring",
    ]
    assert desired.resource("kubernetes/workloads").depends_on == ("terraform/infrastructure",)
    assert desired.resource("helm/monitoring").depends_on == ("kubernetes/workloads",)
    infra = spec(desired, "terraform/infrastructure")
    assert infra["resources"] == sorted(infra["resources"])
    assert "aws_eks_cluster.sunday-staging" in infra["resources"]
    assert "aws_eks_node_group.sunday-staging_general-purpose" in infra["resources"]
    assert "aws_subnet.private[1]" in infra["resources"]
    kube = spec(desired, "kubernetes/workloads")
    assert kube["namespace"] == "sunday-staging"
    assert "Deployment/backend-deployment" in kube["objects"]
    assert "Service/backend-service" in kube["objects"]
    helm = spec(desired, "helm/monitoring")
    assert (helm["release"], helm["chart"], helm["namespace"]) == (
        "prometheus",
        "prometheus-community/kube-prometheus-stack",
        "monitoring",
    )
    assert desired.target == "cloud"
    assert desired.secrets == ("grafana-admin-password",)


def test_same_input_same_bytes(tmp_path: Path) -> None:
    first = desired_cloud(load_matrix(MATRIX), "production")
    second = desired_cloud(load_matrix(MATRIX), "production")
    assert [r.digest for r in first.resources] == [r.digest for r in second.resources]
    a = write_rendered(first, tmp_path / "a")
    b = write_rendered(second, tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in a] == [p.relative_to(tmp_path / "b") for p in b]
    assert all(x.read_bytes() == y.read_bytes() for x, y in zip(a, b, strict=True))


def test_network_matches_the_matrix() -> None:
    prod = tf(desired_cloud(load_matrix(MATRIX), "production"), "network")
    vpc = resources(prod, "aws_vpc")["main"]
    assert vpc["cidr_block"] == "10.0.0.0/16"
    assert prod["data"]["aws_availability_zones"]["available"] == {"state": "available"}
    subnets = resources(prod, "aws_subnet")
    assert subnets["public"]["count"] == 3 and subnets["private"]["count"] == 3
    assert (
        "cidrsubnet(aws_vpc.main.cidr_block, 4, 0 + count.index)" in subnets["public"]["cidr_block"]
    )
    assert "% 3]" in subnets["private"]["availability_zone"]
    assert resources(prod, "aws_nat_gateway")["main"]["count"] == 3
    staging = tf(desired_cloud(load_matrix(MATRIX), "staging"), "network")
    assert resources(staging, "aws_nat_gateway")["main"]["count"] == 1
    assert resources(staging, "aws_vpc")["main"]["cidr_block"] == "10.1.0.0/16"


def test_one_zone_development_still_gets_two_zone_private_subnets_and_says_so() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "development")
    subnets = resources(tf(desired, "network"), "aws_subnet")
    assert subnets["public"]["count"] == 1
    assert subnets["private"]["count"] == 2
    assert "% 2]" in subnets["private"]["availability_zone"]
    assert any("two availability zones" in note for note in desired.notes)


def test_eks_and_node_groups_as_the_matrix_says() -> None:
    eks = tf(desired_cloud(load_matrix(MATRIX), "production"), "eks")
    cluster = resources(eks, "aws_eks_cluster")["sunday-production"]
    assert cluster["name"] == "sunday-production"
    assert cluster["encryption_config"]["provider"]["key_arn"] == "${aws_kms_key.main.arn}"
    groups = resources(eks, "aws_eks_node_group")
    compute = groups["sunday-production_compute-optimized"]
    assert compute["instance_types"] == ["c5.2xlarge"]
    assert compute["scaling_config"] == {"min_size": 3, "max_size": 20, "desired_size": 5}
    memory = groups["sunday-production_memory-optimized"]
    assert memory["scaling_config"] == {"min_size": 2, "max_size": 10, "desired_size": 3}


def test_rds_and_redis_settings_and_no_password_in_any_file() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "production")
    db = resources(tf(desired, "database"), "aws_db_instance")["main"]
    assert (db["engine"], db["engine_version"], db["instance_class"]) == (
        "postgres",
        "14.9",
        "db.r5.4xlarge",
    )
    assert db["multi_az"] is True and db["backup_retention_period"] == 30
    assert db["storage_encrypted"] is True and db["kms_key_id"] == "${aws_kms_key.main.arn}"
    assert db["manage_master_user_password"] is True
    assert "password" not in db
    cache = tf(desired, "cache")
    group = resources(cache, "aws_elasticache_replication_group")["main"]
    assert group["num_cache_clusters"] == 3 and group["node_type"] == "cache.r6g.xlarge"
    assert group["automatic_failover_enabled"] is True
    assert group["auth_token"] == "${random_password.redis_auth.result}"
    version = resources(cache, "aws_secretsmanager_secret_version")["redis_auth"]
    assert version["secret_string"] == "${random_password.redis_auth.result}"
    dev = desired_cloud(load_matrix(MATRIX), "development")
    single = resources(tf(dev, "cache"), "aws_elasticache_replication_group")["main"]
    assert single["num_cache_clusters"] == 1 and single["automatic_failover_enabled"] is False
    for text in rendered_files(desired).values():
        assert "master_password" not in text


def test_storage_versioning_encryption_and_lifecycle() -> None:
    prod = tf(desired_cloud(load_matrix(MATRIX), "production"), "storage")
    assert resources(prod, "aws_s3_bucket")["storage"]["bucket"] == "sunday-production-storage"
    versioning = resources(prod, "aws_s3_bucket_versioning")["storage"]
    assert versioning["versioning_configuration"] == {"status": "Enabled"}
    sse = resources(prod, "aws_s3_bucket_server_side_encryption_configuration")["storage"]
    assert sse["rule"][0]["apply_server_side_encryption_by_default"]["sse_algorithm"] == "AES256"
    assert "storage" in resources(prod, "aws_s3_bucket_lifecycle_configuration")
    dev = tf(desired_cloud(load_matrix(MATRIX), "development"), "storage")
    assert resources(dev, "aws_s3_bucket_versioning")["storage"]["versioning_configuration"] == {
        "status": "Suspended"
    }
    assert not resources(dev, "aws_s3_bucket_lifecycle_configuration")


def test_backend_tags_and_secondary_region() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "production")
    backend = spec(desired, "terraform/infrastructure")["backend"]
    assert backend == {
        "bucket": "sunday-terraform-state",
        "key": "environments/production/terraform.tfstate",
        "region": "us-east-1",
        "dynamodb_table": "sunday-terraform-locks",
        "encrypt": True,
    }
    main = tf(desired, "main")
    primary, secondary = main["provider"]["aws"]
    assert primary["region"] == "us-east-1"
    assert secondary == {
        "alias": "secondary",
        "region": "us-west-2",
        "default_tags": {
            "tags": {"Environment": "production", "ManagedBy": "envplane", "Project": "sunday"}
        },
    }
    assert resources(tf(desired, "secondary"), "aws_s3_bucket")["replica"]["provider"] == (
        "aws.secondary"
    )
    staging = desired_cloud(load_matrix(MATRIX), "staging")
    assert len(tf(staging, "main")["provider"]["aws"]) == 1
    assert "secondary.tf.json" not in spec(staging, "terraform/infrastructure")["files"]


def test_backend_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVPLANE_TF_STATE_BUCKET", "acme-tfstate")
    monkeypatch.setenv("ENVPLANE_TF_LOCK_TABLE", "acme-locks")
    backend = spec(desired_cloud(load_matrix(MATRIX), "staging"), "terraform/infrastructure")[
        "backend"
    ]
    assert (backend["bucket"], backend["dynamodb_table"]) == ("acme-tfstate", "acme-locks")
    monkeypatch.setenv("ENVPLANE_TF_STATE_BUCKET", "Not A Bucket")
    with pytest.raises(BadInput, match="ENVPLANE_TF_STATE_BUCKET"):
        desired_cloud(load_matrix(MATRIX), "staging")


def test_sections_left_out_produce_nothing() -> None:
    matrix = edited(
        """      cache:
        engine: redis
        node_type: cache.t3.medium
        num_cache_nodes: 1
    storage:
      type: s3
      versioning: enabled
      encryption: AES256
""",
        "",
    )
    desired = desired_cloud(matrix, "staging")
    infra = spec(desired, "terraform/infrastructure")
    assert "cache.tf.json" not in infra["files"] and "storage.tf.json" not in infra["files"]
    assert not [a for a in infra["resources"] if "elasticache" in a or "s3" in a]
    assert "redis_address" not in infra["outputs"]
    kube = spec(desired, "kubernetes/workloads")
    assert list(kube["app_secret"]["keys"]) == ["DATABASE_PASSWORD"]
    assert "${tf:redis_address}" not in json.dumps(kube["manifests"])


def test_config_maps_get_cloud_values() -> None:
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    maps = {
        m["metadata"]["name"]: m["data"]
        for m in spec(desired, "kubernetes/workloads")["manifests"]
        if m["kind"] == "ConfigMap"
    }
    database = json.loads(maps["backend-config"]["database.json"])["connection"]
    assert database["host"] == "${tf:rds_address}" and database["port"] == 5432
    assert database["ssl"] is True
    assert "listen 80;" in maps["frontend-config"]["nginx.conf"]
    assert "proxy_pass http://backend-service:80/;" in maps["frontend-config"]["nginx.conf"]
    assert "https://staging.sunday.example.com/api" in maps["frontend-config"]["env.js"]
    with_domain = edited(
        "variables:\n  SENTRY_DSN", "variables:\n  DOMAIN: sunday.com\n  SENTRY_DSN"
    )
    env_js = next(
        m["data"]["env.js"]
        for m in spec(desired_cloud(with_domain, "staging"), "kubernetes/workloads")["manifests"]
        if m["metadata"]["name"] == "frontend-config"
    )
    assert "https://staging.sunday.com/api" in env_js


def test_workloads_probes_secrets_and_budgets() -> None:
    kube = spec(desired_cloud(load_matrix(MATRIX), "production"), "kubernetes/workloads")
    by_name = {f"{m['kind']}/{m['metadata']['name']}": m for m in kube["manifests"]}
    backend = by_name["Deployment/backend-blue"]  # production deploys by blue_green
    assert backend["spec"]["replicas"] == 3
    container = backend["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/sunday/backend:1.0.0"
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["envFrom"] == [{"configMapRef": {"name": "app-config"}}]
    secret_refs = {e["name"]: e["valueFrom"] for e in container["env"] if "valueFrom" in e}
    assert secret_refs["DATABASE_PASSWORD"] == {
        "secretKeyRef": {"name": "app-secrets", "key": "DATABASE_PASSWORD"}
    }
    assert "Secret/app-secrets" not in by_name  # the driver makes it; no value in the files
    assert by_name["PodDisruptionBudget/backend-pdb"]["spec"]["maxUnavailable"] == 1
    assert by_name["Service/frontend-service"]["spec"]["type"] == "LoadBalancer"
    assert by_name["Service/backend-service"]["spec"]["ports"][0]["port"] == 80
    dev = spec(desired_cloud(load_matrix(MATRIX), "development"), "kubernetes/workloads")
    assert not [o for o in dev["objects"] if o.startswith(("PodDisruptionBudget", "NetworkPol"))]
    dev_backend = next(m for m in dev["manifests"] if m["kind"] == "Deployment")
    assert dev_backend["spec"]["strategy"] == {"type": "Recreate"}


def test_network_policies_by_level() -> None:
    def policies(env: str) -> dict[str, Any]:
        kube = spec(desired_cloud(load_matrix(MATRIX), env), "kubernetes/workloads")
        return {m["metadata"]["name"]: m for m in kube["manifests"] if m["kind"] == "NetworkPolicy"}

    staging = policies("staging")  # basic: ingress locked down
    assert staging["default-deny"]["spec"]["policyTypes"] == ["Ingress"]
    assert "allow-egress" not in staging
    prod = policies("production")  # enabled: egress too, with DNS and the data ports
    assert prod["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    egress = prod["allow-egress"]["spec"]["egress"]
    assert {"port": 53, "protocol": "UDP"} in egress[0]["ports"]
    data = next(r for r in egress if r["to"][0].get("ipBlock", {}).get("cidr") == "10.0.0.0/16")
    assert {p["port"] for p in data["ports"]} == {5432, 6379}
    assert policies("development") == {}


def test_monitoring_values_by_level() -> None:
    dev = spec(desired_cloud(load_matrix(MATRIX), "development"), "helm/monitoring")["values"]
    assert dev["prometheus"]["prometheusSpec"]["retention"] == "3d"
    assert dev["grafana"] == {"enabled": False}
    assert dev["alertmanager"] == {"enabled": False}
    prod = spec(desired_cloud(load_matrix(MATRIX), "production"), "helm/monitoring")
    assert prod["values"]["prometheus"]["prometheusSpec"]["retention"] == "15d"
    assert prod["values"]["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert prod["admin_secret"] == {"name": "grafana-admin", "secret": "grafana-admin-password"}


def test_service_without_image_is_a_located_error() -> None:
    matrix = edited('    image: "ghcr.io/sunday/backend:1.0.0"\n', "")
    with pytest.raises(MatrixError) as caught:
        desired_cloud(matrix, "staging")
    err = caught.value
    assert "has no `image`" in err.message and err.line is not None
    assert "services" in (err.key or "")


def test_services_without_a_cluster_and_clusters_outside_the_primary_region() -> None:
    no_cluster = edited(
        """    clusters:
      - name: sunday-staging
        region: us-east-1
        node_groups:
          - name: general-purpose
            instance_type: m5.large
            min_size: 2
            max_size: 10
            desired_size: 3
""",
        "",
    )
    with pytest.raises(MatrixError, match="need a cluster"):
        desired_cloud(no_cluster, "staging")
    moved = edited(
        "      - name: sunday-production\n        region: us-east-1",
        "      - name: sunday-production\n        region: us-west-2",
    )
    with pytest.raises(MatrixError, match="primary region") as caught:
        desired_cloud(moved, "production")
    assert caught.value.key == "environments.production.clusters[0].region"


def _render(args: list[str], out: Path, matrix: Path = MATRIX) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENVPLANE, "-f", str(matrix), "render", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "HOME": str(out.parent)},
    )


def test_cli_render_writes_the_three_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = _render(["staging", "--target", "cloud"], out)
    assert done.returncode == 0, done.stderr
    assert (out / "terraform" / "main.tf.json").is_file()
    assert (out / "kubernetes" / "00-namespace-sunday-staging.yaml").is_file()
    values = yaml.safe_load((out / "helm" / "values-monitoring.yaml").read_text())
    assert values["prometheus"]["enabled"] is True
    assert "Rendered staging for the cloud target" in done.stdout
    (out / "kubernetes" / "99-stale.yaml").write_text("kind: Stale\n")
    again = _render(["staging", "-o", "json"], out)
    report = json.loads(again.stdout)
    assert report["environment"] == "staging" and len(report["files"]) == len(
        list(out.rglob("*.*"))
    )
    assert not (out / "kubernetes" / "99-stale.yaml").exists()


def test_cli_render_bad_input_exits_2_with_the_line(tmp_path: Path) -> None:
    config = tmp_path / "sunday" / "config"
    config.mkdir(parents=True)
    (tmp_path / "sunday" / "templates").symlink_to(REPO / "examples" / "sunday" / "templates")
    text = MATRIX.read_text().replace('    image: "ghcr.io/sunday/backend:1.0.0"\n', "")
    (config / "environment-matrix.yaml").write_text(text)
    done = _render(["staging"], tmp_path / "out", config / "environment-matrix.yaml")
    assert done.returncode == 2
    assert "environment-matrix.yaml:" in done.stderr and "has no `image`" in done.stderr
    assert not (tmp_path / "out").exists()


def test_backend_settings_are_rendered_beside_the_terraform_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`terraform init -backend-config=backend.tfbackend` in the rendered directory reads the
    key, bucket, region and lock table envplane's own init passes as -backend-config=K=V."""
    monkeypatch.setenv("ENVPLANE_TF_STATE_BUCKET", "acme-tf-state")
    monkeypatch.setenv("ENVPLANE_TF_LOCK_TABLE", "acme-tf-locks")
    monkeypatch.setenv("ENVPLANE_TF_STATE_REGION", "eu-west-1")
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    written = write_rendered(desired, tmp_path)
    backend = tmp_path / "terraform" / "backend.tfbackend"
    assert backend in written
    settings = dict(
        (k.strip(), v.strip().strip('"'))
        for k, v in (
            line.split("=", 1)
            for line in backend.read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
    )
    assert settings == {
        "key": "environments/staging/terraform.tfstate",
        "bucket": "acme-tf-state",
        "region": "eu-west-1",
        "dynamodb_table": "acme-tf-locks",
    }
    spec = desired.resource("terraform/infrastructure").spec
    assert settings == {k: spec["backend"][k] for k in settings}  # what init is given
    # The main file's backend block stays partial: the settings come only from init.
    main = json.loads((tmp_path / "terraform" / "main.tf.json").read_text())
    assert main["terraform"]["backend"] == {"s3": {"encrypt": True}}
