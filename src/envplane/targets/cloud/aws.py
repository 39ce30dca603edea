"""AWS through boto3: EKS status and tokens, Secrets Manager, RDS and ElastiCache snapshots,
and S3 sync of the storage bucket. boto3 is imported when a function runs, never before.

Credentials and endpoints come from boto3's usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, ...,
AWS_ENDPOINT_URL); every failure becomes an OperationFailed naming what was being done."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from envplane.errors import OperationFailed

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the token format's prefix, not a secret


def client(service: str, region: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    return session.client(service, config=Config(retries={"max_attempts": 5, "mode": "standard"}))


@contextmanager
def calling(doing: str) -> Iterator[None]:
    """botocore's errors (no credentials, access denied, unreachable) as one clear line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as exc:
        err = exc.response.get("Error", {})
        raise OperationFailed(
            f"{doing}: {err.get('Code', 'error')}: {err.get('Message', exc)}"
        ) from None
    except BotoCoreError as exc:
        raise OperationFailed(
            f"{doing}: {exc}", hint="check AWS credentials and region (AWS_PROFILE, ...)"
        ) from None


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


# --- EKS ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EksCluster:
    name: str
    status: str  # CREATING | ACTIVE | DELETING | FAILED | UPDATING | PENDING
    endpoint: str
    ca_data: str  # base64 PEM, as EKS gives it
    version: str


def eks_cluster(region: str, name: str) -> EksCluster | None:
    """The seed's `aws eks describe-cluster`; None when there is no such cluster."""
    from botocore.exceptions import ClientError

    eks = client("eks", region)
    with calling(f"describing EKS cluster {name} in {region}"):
        try:
            found = eks.describe_cluster(name=name)["cluster"]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise
    return EksCluster(
        name=name,
        status=str(found.get("status", "")),
        endpoint=str(found.get("endpoint", "")),
        ca_data=str((found.get("certificateAuthority") or {}).get("data", "")),
        version=str(found.get("version", "")),
    )


def eks_token(region: str, cluster: str) -> str:
    """A bearer token for the cluster, made as aws-iam-authenticator makes it: a presigned STS
    GetCallerIdentity URL (signed with the x-k8s-aws-id header), base64url, prefixed."""
    sts = client("sts", region)

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    with calling(f"signing an EKS token for {cluster}"):
        url = sts.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
        )
    encoded = base64.urlsafe_b64encode(str(url).encode()).decode().rstrip("=")
    return TOKEN_PREFIX + encoded


# --- Secrets Manager ---------------------------------------------------------------------


def secret_value(region: str, secret_id: str, field: str | None = None) -> str:
    """A secret's text, or one field of a JSON secret (RDS stores {"username", "password"})."""
    sm = client("secretsmanager", region)
    with calling(f"reading secret {secret_id}"):
        text = str(sm.get_secret_value(SecretId=secret_id)["SecretString"])
    if field is None:
        return text
    try:
        value = json.loads(text)[field]
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(f"secret {secret_id} has no JSON field {field!r}") from None
    return str(value)


# --- RDS and ElastiCache snapshots -------------------------------------------------------


def snapshot_database(region: str, instance: str, snapshot: str, *, wait: bool = True) -> str:
    """create_db_snapshot of an RDS instance (the seed's backup); returns the snapshot ARN."""
    rds = client("rds", region)
    with calling(f"snapshotting RDS instance {instance}"):
        made = rds.create_db_snapshot(DBInstanceIdentifier=instance, DBSnapshotIdentifier=snapshot)
        if wait:
            rds.get_waiter("db_snapshot_available").wait(
                DBSnapshotIdentifier=snapshot, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
            )
    return str(made["DBSnapshot"]["DBSnapshotArn"])


def restore_database(
    region: str,
    snapshot: str,
    instance: str,
    *,
    instance_class: str,
    subnet_group: str,
    security_groups: list[str],
    wait: bool = True,
) -> str:
    """A new RDS instance from a snapshot; returns its address once available."""
    rds = client("rds", region)
    with calling(f"restoring RDS snapshot {snapshot} as {instance}"):
        rds.restore_db_instance_from_db_snapshot(
            DBInstanceIdentifier=instance,
            DBSnapshotIdentifier=snapshot,
            DBInstanceClass=instance_class,
            DBSubnetGroupName=subnet_group,
            VpcSecurityGroupIds=security_groups,
            PubliclyAccessible=False,
        )
        if wait:
            rds.get_waiter("db_instance_available").wait(
                DBInstanceIdentifier=instance, WaiterConfig={"Delay": 15, "MaxAttempts": 240}
            )
        found = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"][0]
    return str((found.get("Endpoint") or {}).get("Address", ""))


def snapshot_cache(region: str, replication_group: str, snapshot: str) -> str:
    """An ElastiCache snapshot of the Redis replication group; returns its status."""
    ec = client("elasticache", region)
    with calling(f"snapshotting ElastiCache group {replication_group}"):
        made = ec.create_snapshot(ReplicationGroupId=replication_group, SnapshotName=snapshot)
    return str(made["Snapshot"].get("SnapshotStatus", ""))


def restore_cache(region: str, snapshot: str, replication_group: str, *, node_type: str) -> None:
    """A new Redis replication group seeded from an ElastiCache snapshot."""
    ec = client("elasticache", region)
    with calling(f"restoring ElastiCache snapshot {snapshot} as {replication_group}"):
        ec.create_replication_group(
            ReplicationGroupId=replication_group,
            ReplicationGroupDescription=f"restored from {snapshot}",
            SnapshotName=snapshot,
            CacheNodeType=node_type,
            Engine="redis",
        )


# --- S3 ----------------------------------------------------------------------------------


@dataclass
class SyncReport:
    copied: list[str] = field(default_factory=list)
    unchanged: int = 0
    deleted: list[str] = field(default_factory=list)
    bytes: int = 0


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same(path: Path, size: int, etag: str) -> bool:
    """Unchanged when sizes match and, for single-part uploads, the MD5 is the ETag."""
    if not path.is_file() or path.stat().st_size != size:
        return False
    etag = etag.strip('"')
    return "-" in etag or _md5(path) == etag  # multipart ETags are no MD5: size decides


def _local_path(root: Path, key: str) -> Path | None:
    parts = PurePosixPath(key).parts
    if not parts or key.endswith("/") or any(p in ("..", "") for p in parts) or key.startswith("/"):
        return None  # directory markers and keys that would leave the folder are skipped
    return root.joinpath(*parts)


def _objects(s3: Any, bucket: str) -> dict[str, tuple[int, str]]:
    found: dict[str, tuple[int, str]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            found[str(obj["Key"])] = (int(obj["Size"]), str(obj.get("ETag", "")))
    return found


def sync_bucket_to_dir(region: str, bucket: str, dest: Path) -> SyncReport:
    """Download what differs (the seed's `aws s3 sync s3://... backups/...`)."""
    s3 = client("s3", region)
    report = SyncReport()
    with calling(f"syncing s3://{bucket} to {dest}"):
        for key, (size, etag) in sorted(_objects(s3, bucket).items()):
            path = _local_path(dest, key)
            if path is None:
                continue
            if _same(path, size, etag):
                report.unchanged += 1
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, key, str(path))
            report.copied.append(key)
            report.bytes += size
    return report


def sync_dir_to_bucket(region: str, src: Path, bucket: str, *, delete: bool = False) -> SyncReport:
    """Upload what differs; with `delete`, remove objects that have no file (a restore)."""
    s3 = client("s3", region)
    report = SyncReport()
    with calling(f"syncing {src} to s3://{bucket}"):
        remote = _objects(s3, bucket)
        files = sorted(p for p in src.rglob("*") if p.is_file())
        keys = set()
        for path in files:
            key = path.relative_to(src).as_posix()
            keys.add(key)
            size, etag = remote.get(key, (-1, ""))
            if _same(path, size, etag):
                report.unchanged += 1
                continue
            s3.upload_file(str(path), bucket, key)
            report.copied.append(key)
            report.bytes += path.stat().st_size
        for key in sorted(set(remote) - keys) if delete else []:
            s3.delete_object(Bucket=bucket, Key=key)
            report.deleted.append(key)
    return report


# --- what validation reads (describe calls only) -----------------------------------------


def describe(
    service: str, region: str, doing: str, call: str, **params: Any
) -> dict[str, Any] | None:
    """One describe call's response; None when AWS says there is no such thing (a *NotFound*
    error code), any other failure an OperationFailed naming `doing`."""
    from botocore.exceptions import ClientError

    api = client(service, region)
    with calling(doing):
        try:
            return dict(getattr(api, call)(**params))
        except ClientError as exc:
            code = _code(exc)
            if "NotFound" in code or code in ("NoSuchBucket", "404"):
                return None
            raise


def bucket_settings(region: str, bucket: str) -> dict[str, str] | None:
    """{"versioning": Enabled|Suspended|"" (never enabled), "encryption": the default SSE
    algorithm or ""}; None when the bucket does not exist."""
    from botocore.exceptions import ClientError

    s3 = client("s3", region)
    doing = f"reading bucket {bucket}"
    if describe("s3", region, doing, "head_bucket", Bucket=bucket) is None:
        return None
    with calling(doing):
        versioning = str(s3.get_bucket_versioning(Bucket=bucket).get("Status", ""))
        try:
            rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
            default = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]
            encryption = str(default.get("SSEAlgorithm", ""))
        except ClientError as exc:
            if _code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            encryption = ""
    return {"versioning": versioning, "encryption": encryption}
