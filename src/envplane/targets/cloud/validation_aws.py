"""The AWS side of the cloud target's validation (validation.py): what the checks share
(`CloudFacts`: the recorded specs, Terraform's outputs, the Kubernetes client, each read once)
and the checks read with boto3 - the infrastructure area (EKS cluster and node groups, RDS,
ElastiCache, the bucket) and the AWS half of security (KMS key, encryption at rest and in
transit, the passwords in Secrets Manager). What is expected is the environment's recorded
Terraform rendering, so a check compares AWS with what envplane applied."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from envplane.errors import EnvplaneError
from envplane.targets.checks import Check, Status, Subject, timed
from envplane.targets.cloud import apps, aws, infra
from envplane.targets.cloud.kube import KubeClient

Probe = Callable[[], tuple[Status, str]]


class CloudFacts:
    """What the checks of one validation share, each read once: the recorded specs, Terraform's
    outputs, the Kubernetes client."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.ctx = subject.ctx
        specs = {r.kind: r.spec for r in subject.desired.resources}
        self.tf: Mapping[str, Any] = specs.get("terraform") or {}
        self.kube_spec: Mapping[str, Any] | None = specs.get("kubernetes")
        self.helm: Mapping[str, Any] | None = specs.get("helm")
        self.region = str(self.tf.get("region") or "")
        self.ns = str((self.kube_spec or {}).get("namespace", ""))
        self._outputs: dict[str, Any] | None = None
        self._kube: KubeClient | None = None

    def outputs(self) -> dict[str, Any]:
        if self._outputs is None:
            self._outputs = infra.outputs(self.ctx)
        return self._outputs

    def kube(self) -> KubeClient:
        if self._kube is None:
            assert self.kube_spec is not None
            self._kube = apps.client(self.ctx, self.kube_spec)
        return self._kube

    def blocks(self, file: str, kind: str) -> dict[str, dict[str, Any]]:
        """Resource blocks of one type in one rendered Terraform file."""
        text = (self.tf.get("files") or {}).get(f"{file}.tf.json")
        found = json.loads(text).get("resource", {}).get(kind, {}) if text else {}
        return {str(k): dict(v) for k, v in found.items()}

    def manifests(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in (self.kube_spec or {}).get("manifests", []) if m.get("kind") == kind]


def probe(category: str, name: str, fn: Probe) -> Check:
    """timed(), keeping an envplane error's hint: it says what to do."""

    def guarded() -> tuple[Status, str]:
        try:
            return fn()
        except EnvplaneError as exc:
            return "fail", f"{exc}" + (f"; {exc.hint}" if exc.hint else "")

    return timed(category, name, guarded)


def _first(
    fn: Callable[[CloudFacts, Mapping[str, Any]], tuple[tuple[Status, str], dict[str, Any]]],
    env: CloudFacts,
    block: Mapping[str, Any],
) -> tuple[Status, str]:
    return fn(env, block)[0]


def skip(category: str, name: str, why: str) -> Check:
    return Check(category, name, "skip", why)


# --- infrastructure ------------------------------------------------------------------------


def infrastructure(env: CloudFacts) -> list[Check]:
    if not env.tf:
        return [skip("infrastructure", "terraform", "no Terraform infrastructure recorded")]
    checks = [probe("infrastructure", "eks cluster active", lambda: _cluster(env))]
    for block in env.blocks("eks", "aws_eks_node_group").values():
        group = str(block["node_group_name"])
        checks.append(
            probe("infrastructure", f"node group {group}", partial(_node_group, env, block))
        )
    for block in env.blocks("database", "aws_db_instance").values():
        checks.append(probe("infrastructure", "rds available", partial(_first, _rds, env, block)))
    for block in env.blocks("cache", "aws_elasticache_replication_group").values():
        checks.append(
            probe("infrastructure", "elasticache available", partial(_first, _cache, env, block))
        )
    for block in env.blocks("storage", "aws_s3_bucket").values():
        checks.append(probe("infrastructure", "bucket", partial(_bucket, env, block)))
    return checks


def _cluster_name(env: CloudFacts) -> str:
    return str(env.outputs().get("cluster_name") or "")


def _cluster(env: CloudFacts) -> tuple[Status, str]:
    name = _cluster_name(env)
    if not name:
        return "skip", "Terraform outputs no cluster_name: this environment has no cluster"
    found = aws.eks_cluster(env.region, name)
    if found is None:
        return "fail", f"EKS cluster {name} not found in {env.region}; `envplane update` makes it"
    if found.status != "ACTIVE":
        return "fail", (
            f"EKS cluster {name} is {found.status}, not ACTIVE; wait, or look at it with "
            f"`aws eks describe-cluster --name {name} --region {env.region}`"
        )
    return "pass", f"EKS cluster {name} is ACTIVE (Kubernetes {found.version})"


def _node_group(env: CloudFacts, block: Mapping[str, Any]) -> tuple[Status, str]:
    cluster, group = _cluster_name(env), str(block["node_group_name"])
    want = block.get("scaling_config") or {}
    found = aws.describe(
        "eks",
        env.region,
        f"describing node group {group}",
        "describe_nodegroup",
        clusterName=cluster,
        nodegroupName=group,
    )
    if found is None:
        return "fail", f"node group {group} of {cluster} not found; `envplane update` makes it"
    ng = found["nodegroup"]
    sizes = ng.get("scalingConfig") or {}
    got = {k: sizes.get(k) for k in ("minSize", "maxSize", "desiredSize")}
    expect = {
        "minSize": want.get("min_size"),
        "maxSize": want.get("max_size"),
        "desiredSize": want.get("desired_size"),
    }
    shown = f"{got['minSize']}/{got['desiredSize']}/{got['maxSize']} (min/desired/max)"
    if ng.get("status") != "ACTIVE":
        issues = "; ".join(i.get("message", "") for i in (ng.get("health") or {}).get("issues", []))
        return "fail", f"node group {group} is {ng.get('status')}" + (
            f": {issues}" if issues else ""
        )
    if got != expect:
        return "fail", (
            f"node group {group} is at {shown}, the matrix says {expect['minSize']}/"
            f"{expect['desiredSize']}/{expect['maxSize']}; `envplane update` sets them"
        )
    return "pass", f"node group {group} ACTIVE at {shown}"


def _rds(env: CloudFacts, block: Mapping[str, Any]) -> tuple[tuple[Status, str], dict[str, Any]]:
    ident = str(block["identifier"])
    found = aws.describe(
        "rds",
        env.region,
        f"describing RDS {ident}",
        "describe_db_instances",
        DBInstanceIdentifier=ident,
    )
    if not found or not found.get("DBInstances"):
        return ("fail", f"RDS instance {ident} not found; `envplane update` makes it"), {}
    db = dict(found["DBInstances"][0])
    status = str(db.get("DBInstanceStatus"))
    if status != "available":
        return ("fail", f"RDS instance {ident} is {status}, not available; wait for it"), db
    return ("pass", f"RDS instance {ident} is available ({db.get('DBInstanceClass')})"), db


def _cache(env: CloudFacts, block: Mapping[str, Any]) -> tuple[tuple[Status, str], dict[str, Any]]:
    ident = str(block["replication_group_id"])
    found = aws.describe(
        "elasticache",
        env.region,
        f"describing ElastiCache {ident}",
        "describe_replication_groups",
        ReplicationGroupId=ident,
    )
    if not found or not found.get("ReplicationGroups"):
        return ("fail", f"ElastiCache group {ident} not found; `envplane update` makes it"), {}
    group = dict(found["ReplicationGroups"][0])
    status = str(group.get("Status"))
    if status != "available":
        return ("fail", f"ElastiCache group {ident} is {status}, not available; wait"), group
    return ("pass", f"ElastiCache group {ident} is available"), group


def _bucket(env: CloudFacts, block: Mapping[str, Any]) -> tuple[Status, str]:
    name = str(block["bucket"])
    versioning = env.blocks("storage", "aws_s3_bucket_versioning").get("storage", {})
    want_versioning = str((versioning.get("versioning_configuration") or {}).get("status", ""))
    sse = env.blocks("storage", "aws_s3_bucket_server_side_encryption_configuration")
    rules = (sse.get("storage") or {}).get("rule") or [{}]
    want_sse = str(
        rules[0].get("apply_server_side_encryption_by_default", {}).get("sse_algorithm", "")
    )
    found = aws.bucket_settings(env.region, name)
    if found is None:
        return "fail", f"bucket {name} not found; `envplane update` makes it"
    # A bucket never versioned has no status: that is what Suspended asks for.
    got_versioning = found["versioning"] or "Suspended"
    problems = []
    if want_versioning and got_versioning != want_versioning:
        problems.append(f"versioning {got_versioning}, the matrix says {want_versioning}")
    if want_sse and found["encryption"] != want_sse:
        problems.append(f"encryption {found['encryption'] or 'none'}, the matrix says {want_sse}")
    if problems:
        return "fail", f"bucket {name}: " + "; ".join(problems) + "; `envplane update` sets them"
    return "pass", f"bucket {name}: versioning {got_versioning}, encryption {found['encryption']}"


# --- security: the AWS half ----------------------------------------------------------------


def security(env: CloudFacts) -> list[Check]:
    checks: list[Check] = []
    if not env.tf:
        return checks
    for block in env.blocks("kms", "aws_kms_key").values():
        checks.append(probe("security", "kms key enabled", partial(_kms, env, block)))
    if not env.blocks("kms", "aws_kms_key"):
        checks.append(skip("security", "kms key enabled", "kms_encryption is off: no key"))
    for block in env.blocks("database", "aws_db_instance").values():
        checks.append(
            probe("security", "rds storage encrypted", partial(_rds_encrypted, env, block))
        )
    for block in env.blocks("cache", "aws_elasticache_replication_group").values():
        checks.append(
            probe("security", "elasticache encrypted", partial(_cache_encrypted, env, block))
        )
    checks.append(probe("security", "secrets in secrets manager", lambda: _secrets(env)))
    return checks


def _kms(env: CloudFacts, block: Mapping[str, Any]) -> tuple[Status, str]:
    arn = str(env.outputs().get("kms_key_arn") or "")
    if not arn:
        return "fail", "Terraform outputs no kms_key_arn; `envplane update` makes the key"
    found = aws.describe("kms", env.region, f"describing KMS key {arn}", "describe_key", KeyId=arn)
    if found is None:
        return "fail", f"KMS key {arn} not found; `envplane update` makes it"
    state = str(found["KeyMetadata"].get("KeyState"))
    if state != "Enabled":
        return "fail", f"KMS key {arn} is {state}; enable it (`aws kms enable-key`) or update"
    rotation = aws.describe(
        "kms", env.region, f"reading the rotation of {arn}", "get_key_rotation_status", KeyId=arn
    )
    rotating = bool((rotation or {}).get("KeyRotationEnabled"))
    if block.get("enable_key_rotation") and not rotating:
        return "fail", f"KMS key {arn} is Enabled but not rotated; `envplane update` turns it on"
    return "pass", f"KMS key {arn} is Enabled" + (", rotated yearly" if rotating else "")


def _rds_encrypted(env: CloudFacts, block: Mapping[str, Any]) -> tuple[Status, str]:
    (status, detail), db = _rds(env, block)
    if not db:
        return status, detail
    ident = block["identifier"]
    if block.get("storage_encrypted") and not db.get("StorageEncrypted"):
        return "fail", (
            f"RDS instance {ident} storage is not encrypted; encryption is set at creation: "
            "restore a snapshot into an encrypted instance"
        )
    key = db.get("KmsKeyId") or "the AWS-managed key"
    return "pass", f"RDS instance {ident} storage encrypted ({key})"


def _cache_encrypted(env: CloudFacts, block: Mapping[str, Any]) -> tuple[Status, str]:
    (status, detail), group = _cache(env, block)
    if not group:
        return status, detail
    ident = block["replication_group_id"]
    missing = [
        what
        for what, key, attr in (
            ("at rest", "at_rest_encryption_enabled", "AtRestEncryptionEnabled"),
            ("in transit", "transit_encryption_enabled", "TransitEncryptionEnabled"),
        )
        if block.get(key) and not group.get(attr)
    ]
    if missing:
        return "fail", (
            f"ElastiCache group {ident} is not encrypted {' or '.join(missing)}; set at "
            "creation: recreate it from a snapshot"
        )
    return "pass", f"ElastiCache group {ident} encrypted at rest and in transit"


def secret_arns(env: CloudFacts) -> dict[str, str]:
    """Output name -> ARN of each Secrets Manager secret the app's Secret is made from."""
    keys = ((env.kube_spec or {}).get("app_secret") or {}).get("keys") or {}
    outputs = env.outputs()
    return {str(o["output"]): str(outputs.get(o["output"]) or "") for o in keys.values()}


def _secrets(env: CloudFacts) -> tuple[Status, str]:
    arns = secret_arns(env)
    if not arns:
        return "skip", "no database or cache password to keep"
    missing = [name for name, arn in sorted(arns.items()) if not arn]
    gone = [
        arn
        for arn in sorted(a for a in arns.values() if a)
        if aws.describe(
            "secretsmanager",
            env.region,
            f"describing secret {arn}",
            "describe_secret",
            SecretId=arn,
        )
        is None
    ]
    if missing or gone:
        what = [f"Terraform output {m} is empty" for m in missing]
        what += [f"secret {arn} not found" for arn in gone]
        return "fail", "; ".join(what) + "; `envplane update` makes them"
    return "pass", f"{len(arns)} password(s) kept in Secrets Manager: {', '.join(sorted(arns))}"
