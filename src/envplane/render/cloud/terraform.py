"""All Terraform files of one environment: providers and backend, network, EKS, data, outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envplane.matrix import Environment, Matrix
from envplane.render.cloud import tf_data, tf_eks, tf_network, tf_storage
from envplane.render.cloud.names import stack_name, tags
from envplane.render.cloud.tf import TfFile, ref
from envplane.render.variables import database_name, is_on

PRIVATE = ref("aws_subnet.private[*].id")


@dataclass(frozen=True)
class TerraformFiles:
    files: dict[str, str]  # file name -> JSON text
    addresses: list[str]  # sorted resource instance addresses
    outputs: list[str]  # output names
    replicated_storage: bool


def _main(project: str, env_name: str, env: Environment) -> TfFile:
    f = TfFile("main")
    labels = tags(project, env_name)
    providers: list[dict[str, Any]] = [
        {"region": env.regions.primary, "default_tags": {"tags": labels}}
    ]
    if env.regions.secondary:
        providers.append(
            {
                "alias": "secondary",
                "region": env.regions.secondary,
                "default_tags": {"tags": labels},
            }
        )
    f.doc = {
        "terraform": {
            "required_version": ">= 1.5.0",
            "required_providers": {
                "aws": {"source": "hashicorp/aws", "version": "~> 5.70"},
                "random": {"source": "hashicorp/random", "version": "~> 3.6"},
            },
            # Bucket, key, region and lock table come from `init -backend-config=...`.
            "backend": {"s3": {"encrypt": True}},
        },
        "provider": {"aws": providers},
    }
    return f


def _outputs(env: Environment, cluster_label: str | None, stack: str) -> TfFile:
    f = TfFile("outputs")
    if env.networking:
        f.output("vpc_id", ref("aws_vpc.main.id"), "the environment's VPC")
    if cluster_label:
        eks = f"aws_eks_cluster.{cluster_label}"
        f.output("cluster_name", ref(f"{eks}.name"), "EKS cluster that runs the workloads")
        f.output("cluster_endpoint", ref(f"{eks}.endpoint"), "its Kubernetes API")
        f.output("cluster_ca", ref(f"{eks}.certificate_authority[0].data"), "its CA (base64)")
    dbs = env.databases
    if dbs and dbs.primary:
        f.output("rds_address", ref("aws_db_instance.main.address"), "PostgreSQL host")
        f.output("rds_identifier", ref("aws_db_instance.main.identifier"), "RDS instance")
        f.output(
            "rds_master_secret_arn",
            ref("aws_db_instance.main.master_user_secret[0].secret_arn"),
            "Secrets Manager secret holding the database password",
        )
    if dbs and dbs.cache:
        rg = "aws_elasticache_replication_group.main"
        f.output("redis_address", ref(f"{rg}.primary_endpoint_address"), "Redis host")
        f.output("redis_replication_group", ref(f"{rg}.id"), "ElastiCache replication group")
        f.output(
            "redis_auth_secret_arn",
            ref("aws_secretsmanager_secret.redis_auth.arn"),
            "Secrets Manager secret holding the Redis AUTH token",
        )
    if env.storage:
        f.output("storage_bucket", ref("aws_s3_bucket.storage.id"), "S3 bucket of the storage")
    if env.security and is_on(env.security.kms_encryption):
        f.output("kms_key_arn", ref("aws_kms_key.main.arn"), f"KMS key of {stack}")
    return f


def render_terraform(matrix: Matrix, env_name: str) -> TerraformFiles:
    env = matrix.environment(env_name)
    project = matrix.project
    stack = stack_name(project, env_name)
    kms_on = bool(env.security and is_on(env.security.kms_encryption))
    files = [_main(project, env_name, env)]
    kms = None
    if kms_on:
        kf = TfFile("kms")
        kms = tf_storage.kms_key(kf, stack)
        files.append(kf)
    if env.networking is not None:
        nf = TfFile("network")
        tf_network.network(nf, env.networking, env, stack)
        files.append(nf)
    cluster_label = None
    if env.clusters:
        ef = TfFile("eks")
        strict = bool(env.security and env.security.iam_roles == "strict")
        labels = [
            tf_eks.cluster(ef, c, subnets=PRIVATE, kms=kms, strict_logging=strict)
            for c in env.clusters
        ]
        cluster_label = labels[0]
        files.append(ef)
    dbs = env.databases
    if dbs and dbs.primary:
        df = TfFile("database")
        db_name = database_name(project, env_name)
        tf_data.database(df, dbs.primary, stack=stack, db_name=db_name, subnets=PRIVATE, kms=kms)
        files.append(df)
    if dbs and dbs.cache:
        cf = TfFile("cache")
        tf_data.cache(cf, dbs.cache, stack=stack, subnets=PRIVATE, kms=kms)
        files.append(cf)
    if env.storage:
        sf = TfFile("storage")
        tf_storage.storage(sf, env.storage, stack=stack, kms=kms)
        files.append(sf)
    replicated = False
    if env.regions.secondary:
        rf = TfFile("secondary")
        days = dbs.primary.backup_retention if dbs and dbs.primary else None
        replicated = tf_storage.secondary(
            rf, stack=stack, backup_days=days, storage_spec=env.storage
        )
        if rf.doc:
            files.append(rf)
    outputs = _outputs(env, cluster_label, stack)
    files.append(outputs)
    addresses = sorted(a for f in files for a in f.addresses())
    return TerraformFiles(
        files={f.filename: f.text() for f in files},
        addresses=addresses,
        outputs=sorted(outputs.doc.get("output", {})),
        replicated_storage=replicated,
    )
