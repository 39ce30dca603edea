"""S3 storage, the environment's KMS key, and what goes to the secondary region.

Lifecycle rules when `lifecycle_policies` is on: objects move to STANDARD_IA after 30 days and
GLACIER after 90, old versions expire after 90 days, unfinished uploads after 7. Versioning
off renders as "Suspended" so that turning it off later is possible (S3 never un-versions)."""

from __future__ import annotations

from envplane.matrix import Storage
from envplane.render.cloud.names import aws_name
from envplane.render.cloud.tf import TfFile, assume_role, policy, ref
from envplane.render.variables import is_on

SECONDARY = "aws.secondary"


def kms_key(f: TfFile, stack: str) -> str:
    key = f.resource(
        "aws_kms_key",
        "main",
        {
            "description": f"{stack}: data at rest (EKS secrets, RDS, Redis, S3, Secrets Manager)",
            "enable_key_rotation": True,
            "deletion_window_in_days": 30,
        },
    )
    f.resource(
        "aws_kms_alias", "main", {"name": f"alias/{stack}", "target_key_id": ref(f"{key}.key_id")}
    )
    return ref(f"{key}.arn")


def bucket_name(stack: str, suffix: str = "storage") -> str:
    return aws_name(f"{stack}-{suffix}", 63)


def _private_bucket(f: TfFile, label: str, name: str, extra: dict[str, object]) -> str:
    bucket = f.resource("aws_s3_bucket", label, {"bucket": name, "force_destroy": True, **extra})
    f.resource(
        "aws_s3_bucket_public_access_block",
        label,
        {
            "bucket": ref(f"{bucket}.id"),
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
            **extra,
        },
    )
    return bucket


def storage(f: TfFile, spec: Storage, *, stack: str, kms: str | None) -> None:
    bucket = _private_bucket(f, "storage", bucket_name(stack), {})
    bucket_id = ref(f"{bucket}.id")
    versioned = is_on(spec.versioning)
    f.resource(
        "aws_s3_bucket_versioning",
        "storage",
        {
            "bucket": bucket_id,
            "versioning_configuration": {"status": "Enabled" if versioned else "Suspended"},
        },
    )
    default: dict[str, object] = {"sse_algorithm": spec.encryption}
    if spec.encryption == "aws:kms" and kms is not None:
        default["kms_master_key_id"] = kms
    f.resource(
        "aws_s3_bucket_server_side_encryption_configuration",
        "storage",
        {
            "bucket": bucket_id,
            "rule": [
                {
                    "apply_server_side_encryption_by_default": default,
                    "bucket_key_enabled": spec.encryption == "aws:kms",
                }
            ],
        },
    )
    if is_on(spec.lifecycle_policies):
        rule: dict[str, object] = {
            "id": "tiering",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "transition": [
                {"days": 30, "storage_class": "STANDARD_IA"},
                {"days": 90, "storage_class": "GLACIER"},
            ],
            "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
        }
        if versioned:
            rule["noncurrent_version_expiration"] = {"noncurrent_days": 90}
        f.resource(
            "aws_s3_bucket_lifecycle_configuration",
            "storage",
            {
                "bucket": bucket_id,
                "rule": [rule],
                "depends_on": ["aws_s3_bucket_versioning.storage"],
            },
        )


def secondary(
    f: TfFile,
    *,
    stack: str,
    backup_days: int | None,
    storage_spec: Storage | None,
) -> bool:
    """RDS automated backups and S3 objects copied to the secondary region; returns whether
    the bucket is replicated (S3 needs versioning and SSE-S3 for the rule rendered here)."""
    key = None
    if backup_days:
        key = f.resource(
            "aws_kms_key",
            "secondary",
            {
                "provider": SECONDARY,
                "description": f"{stack}: replicated backups in the secondary region",
                "enable_key_rotation": True,
                "deletion_window_in_days": 30,
            },
        )
        f.resource(
            "aws_db_instance_automated_backups_replication",
            "main",
            {
                "provider": SECONDARY,
                "source_db_instance_arn": ref("aws_db_instance.main.arn"),
                "retention_period": backup_days,
                "kms_key_id": ref(f"{key}.arn"),
            },
        )
    if (
        storage_spec is None
        or not is_on(storage_spec.versioning)
        or storage_spec.encryption != "AES256"
    ):
        return False
    _replica(f, stack)
    return True


def _replica(f: TfFile, stack: str) -> None:
    replica = _private_bucket(
        f, "replica", bucket_name(stack, "storage-replica"), {"provider": SECONDARY}
    )
    f.resource(
        "aws_s3_bucket_versioning",
        "replica",
        {
            "provider": SECONDARY,
            "bucket": ref(f"{replica}.id"),
            "versioning_configuration": {"status": "Enabled"},
        },
    )
    role = f.resource(
        "aws_iam_role",
        "replication",
        {
            "name_prefix": f"{aws_name(stack, 24)}-s3-replica-",
            "assume_role_policy": assume_role("s3.amazonaws.com"),
        },
    )
    source, target = ref("aws_s3_bucket.storage.arn"), ref(f"{replica}.arn")
    f.resource(
        "aws_iam_role_policy",
        "replication",
        {
            "name": "s3-replication",
            "role": ref(f"{role}.id"),
            "policy": policy(
                [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                        "Resource": [source],
                    },
                    {
                        "Effect": "Allow",
                        "Action": [
                            "s3:GetObjectVersionAcl",
                            "s3:GetObjectVersionForReplication",
                            "s3:GetObjectVersionTagging",
                        ],
                        "Resource": [f"{source}/*"],
                    },
                    {
                        "Effect": "Allow",
                        "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
                        "Resource": [f"{target}/*"],
                    },
                ]
            ),
        },
    )
    f.resource(
        "aws_s3_bucket_replication_configuration",
        "storage",
        {
            "role": ref(f"{role}.arn"),
            "bucket": ref("aws_s3_bucket.storage.id"),
            "rule": [
                {
                    "id": "secondary-region",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "delete_marker_replication": {"status": "Enabled"},
                    "destination": {"bucket": target, "storage_class": "STANDARD"},
                }
            ],
            "depends_on": ["aws_s3_bucket_versioning.replica", "aws_s3_bucket_versioning.storage"],
        },
    )
