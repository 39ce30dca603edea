"""RDS PostgreSQL and ElastiCache Redis, reachable only from inside the VPC.

Passwords never appear in the files: RDS keeps its master password in Secrets Manager itself
(manage_master_user_password); Redis's AUTH token is a random_password stored in a Secrets
Manager secret. Terraform's state holds the latter, which is why the state bucket is encrypted.
"""

from __future__ import annotations

import json

from envplane.matrix import CacheCluster, PrimaryDatabase
from envplane.render.cloud.names import (
    DB_MAX_STORAGE_GB,
    DB_STORAGE_GB,
    DB_USER,
    REDIS_VERSION,
    aws_name,
)
from envplane.render.cloud.tf import TfFile, ref

SNAPSHOT_SUFFIX = ref("random_id.final_snapshot.hex")
# A restore or a clone swaps a new instance (group) in from a snapshot by a Terraform override
# file (`snapshot_override`); the files themselves never name a snapshot, so these attributes
# are ignored once it is made: dropping the override must not replace the data with an empty
# instance. `db_name` too: an instance restored from another environment's snapshot keeps
# that environment's initial database name in RDS's own record.
DB_IGNORED = ["snapshot_identifier", "db_name"]
CACHE_IGNORED = ["snapshot_name"]
DB_ADDRESS = "aws_db_instance.main"
CACHE_ADDRESS = "aws_elasticache_replication_group.main"
OVERRIDE_FILE = "restore_override.tf.json"


def _ingress(f: TfFile, label: str, stack: str, port: int, what: str) -> str:
    sg = f.resource(
        "aws_security_group",
        label,
        {
            "name_prefix": f"{stack}-{label}-",
            "description": f"{what} of {stack}: reachable from inside the VPC only",
            "vpc_id": ref("aws_vpc.main.id"),
            "lifecycle": {"create_before_destroy": True},
        },
    )
    f.resource(
        "aws_vpc_security_group_ingress_rule",
        label,
        {
            "security_group_id": ref(f"{sg}.id"),
            "cidr_ipv4": ref("aws_vpc.main.cidr_block"),
            "from_port": port,
            "to_port": port,
            "ip_protocol": "tcp",
            "description": what,
        },
    )
    return sg


def parameter_family(version: str) -> str:
    major, _, rest = version.partition(".")
    # PostgreSQL 9.x families name the minor version too (postgres9.6); 10 and later do not.
    return f"postgres{major}.{rest.split('.')[0]}" if int(major) < 10 else f"postgres{major}"


def database(
    f: TfFile, db: PrimaryDatabase, *, stack: str, db_name: str, subnets: str, kms: str | None
) -> None:
    f.resource("aws_db_subnet_group", "main", {"name": aws_name(stack, 255), "subnet_ids": subnets})
    sg = _ingress(f, "database", stack, 5432, "PostgreSQL")
    f.resource(
        "aws_db_parameter_group",
        "main",
        {
            "name_prefix": f"{stack}-",
            "family": parameter_family(db.version),
            "parameter": [{"name": "rds.force_ssl", "value": "1"}],
            "lifecycle": {"create_before_destroy": True},
        },
    )
    # A destroyed environment leaves a final snapshot; the suffix keeps re-creations apart.
    f.resource("random_id", "final_snapshot", {"byte_length": 4})
    body: dict[str, object] = {
        "identifier": aws_name(stack, 63),
        "engine": "postgres",
        "engine_version": db.version,
        "auto_minor_version_upgrade": False,  # the matrix pins the version
        "instance_class": db.instance_class,
        "allocated_storage": DB_STORAGE_GB,
        "max_allocated_storage": DB_MAX_STORAGE_GB,
        "storage_type": "gp3",
        "storage_encrypted": True,
        "db_name": db_name,
        "username": DB_USER,
        "manage_master_user_password": True,
        "multi_az": db.multi_az,
        "backup_retention_period": db.backup_retention,
        "copy_tags_to_snapshot": True,
        "db_subnet_group_name": ref("aws_db_subnet_group.main.name"),
        "parameter_group_name": ref("aws_db_parameter_group.main.name"),
        "vpc_security_group_ids": [ref(f"{sg}.id")],
        "publicly_accessible": False,
        "skip_final_snapshot": False,
        "final_snapshot_identifier": f"{aws_name(stack, 45)}-final-{SNAPSHOT_SUFFIX}",
        "lifecycle": {"ignore_changes": list(DB_IGNORED)},
    }
    if kms is not None:
        body["kms_key_id"] = kms
        body["master_user_secret_kms_key_id"] = kms
    f.resource("aws_db_instance", "main", body)


def cache(f: TfFile, spec: CacheCluster, *, stack: str, subnets: str, kms: str | None) -> None:
    nodes = spec.num_cache_nodes
    f.resource(
        "aws_elasticache_subnet_group",
        "main",
        {"name": aws_name(stack, 255), "subnet_ids": subnets},
    )
    sg = _ingress(f, "cache", stack, 6379, "Redis")
    f.resource("random_password", "redis_auth", {"length": 32, "special": False})
    secret: dict[str, object] = {
        "name_prefix": f"{stack}/redis-auth-",
        "description": f"Redis AUTH token of {stack}",
        "recovery_window_in_days": 7,
    }
    if kms is not None:
        secret["kms_key_id"] = kms
    f.resource("aws_secretsmanager_secret", "redis_auth", secret)
    f.resource(
        "aws_secretsmanager_secret_version",
        "redis_auth",
        {
            "secret_id": ref("aws_secretsmanager_secret.redis_auth.id"),
            "secret_string": ref("random_password.redis_auth.result"),
        },
    )
    # A replication group even for one node: only groups support AUTH and TLS for Redis.
    body: dict[str, object] = {
        "replication_group_id": aws_name(stack, 40),
        "description": f"Redis of {stack}",
        "engine": "redis",
        "engine_version": REDIS_VERSION,
        "node_type": spec.node_type,
        "num_cache_clusters": nodes,
        "port": 6379,
        "parameter_group_name": "default.redis7",
        "automatic_failover_enabled": nodes > 1,
        "multi_az_enabled": nodes > 1,
        "subnet_group_name": ref("aws_elasticache_subnet_group.main.name"),
        "security_group_ids": [ref(f"{sg}.id")],
        "at_rest_encryption_enabled": True,
        "transit_encryption_enabled": True,
        "auth_token": ref("random_password.redis_auth.result"),
        "apply_immediately": True,
        "lifecycle": {"ignore_changes": list(CACHE_IGNORED)},
    }
    if kms is not None:
        body["kms_key_id"] = kms
    f.resource("aws_elasticache_replication_group", "main", body)


def snapshot_override(*, database: str | None = None, cache: str | None = None) -> str:
    """The Terraform override file (OVERRIDE_FILE) that swaps the RDS instance in from the DB
    snapshot `database` and/or the Redis group from the ElastiCache snapshot `cache`: the
    snapshot attribute set and no longer ignored (`-replace` of the address makes Terraform
    build the new one even when the same snapshot was restored before)."""
    blocks: dict[str, dict[str, object]] = {}
    if database is not None:
        ignored = [a for a in DB_IGNORED if a != "snapshot_identifier"]
        blocks["aws_db_instance"] = {
            "main": {"snapshot_identifier": database, "lifecycle": {"ignore_changes": ignored}}
        }
    if cache is not None:
        blocks["aws_elasticache_replication_group"] = {
            "main": {"snapshot_name": cache, "lifecycle": {"ignore_changes": []}}
        }
    return json.dumps({"resource": blocks}, indent=2, sort_keys=True) + "\n"
