"""RDS and ElastiCache snapshots for the cloud data driver: made, read, deleted, and waited on
within a bound (ENVPLANE_AWS_WAIT seconds, polled every ENVPLANE_AWS_POLL).

A wait ends in one of three ways: the service reports the snapshot (or instance) usable; it
reports it failed (OperationFailed: the journaled step fails, nothing after it runs); or the
bound passes (OperationFailed with the hint to resume: the step waits again, it does not make a
second snapshot)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.cloud import aws

WAIT_ENV = "ENVPLANE_AWS_WAIT"
POLL_ENV = "ENVPLANE_AWS_POLL"
FAILED = frozenset({"failed", "error", "deleted", "deleting", "incompatible-restore",
                    "incompatible-parameters", "incompatible-network", "storage-full"})  # fmt: skip
RESUME_HINT = "the operation is journaled: `envplane resume OP_ID` waits again from this step"


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name) or default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Snapshot:
    """What a backup's manifest records of a service's snapshot."""

    service: str  # "rds" | "elasticache"
    identifier: str
    arn: str
    status: str
    source: str  # the instance or replication group it was taken of
    details: dict[str, str]


def wait_until(
    what: str,
    read: Callable[[], str | None],
    progress: Callable[[str], None],
    *,
    ready: frozenset[str] = frozenset({"available"}),
) -> str:
    """Poll `read` (the status, None when gone) until it is in `ready`; OperationFailed when
    it is failed or gone, or after ENVPLANE_AWS_WAIT seconds."""
    bound, poll = _seconds(WAIT_ENV, 3600.0), _seconds(POLL_ENV, 15.0)
    deadline = time.monotonic() + bound
    last = ""
    while True:
        status = read()
        if status is None:
            raise OperationFailed(f"{what} does not exist (any more)")
        if status in ready:
            return status
        if status.lower() in FAILED:
            raise OperationFailed(
                f"{what} is {status}: AWS reports it unusable; nothing was swapped",
                hint="see its events in the AWS console; " + RESUME_HINT,
            )
        if status != last:
            progress(f"{what}: {status}")
            last = status
        if time.monotonic() >= deadline:
            raise OperationFailed(
                f"{what} is still {status} after {bound:.0f}s ({WAIT_ENV})", hint=RESUME_HINT
            )
        time.sleep(poll)


# --- RDS ---------------------------------------------------------------------------------


def _code(exc: Exception) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))


def db_snapshot(region: str, identifier: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    rds = aws.client("rds", region)
    with aws.calling(f"reading RDS snapshot {identifier}"):
        try:
            found = rds.describe_db_snapshots(DBSnapshotIdentifier=identifier)["DBSnapshots"]
        except ClientError as exc:
            if _code(exc) == "DBSnapshotNotFound":
                return None
            raise
    return dict(found[0]) if found else None


def db_instance(region: str, identifier: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    rds = aws.client("rds", region)
    with aws.calling(f"reading RDS instance {identifier}"):
        try:
            found = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        except ClientError as exc:
            if _code(exc) == "DBInstanceNotFound":
                return None
            raise
    return dict(found[0]) if found else None


def _rds_snapshot(found: dict[str, Any]) -> Snapshot:
    return Snapshot(
        service="rds",
        identifier=str(found["DBSnapshotIdentifier"]),
        arn=str(found.get("DBSnapshotArn", "")),
        status=str(found.get("Status", "")),
        source=str(found.get("DBInstanceIdentifier", "")),
        details={
            "engine": str(found.get("Engine", "")),
            "engine_version": str(found.get("EngineVersion", "")),
            "allocated_storage_gb": str(found.get("AllocatedStorage", "")),
            "created": str(found.get("SnapshotCreateTime", "")),
        },
    )


def snapshot_db(
    region: str, instance: str, identifier: str, progress: Callable[[str], None]
) -> Snapshot:
    """A manual snapshot of an RDS instance, waited on until available. One that AWS reports
    failed is deleted (best effort) before the error is raised."""
    if db_snapshot(region, identifier) is None:  # a resumed step waits on the one it made
        rds = aws.client("rds", region)
        with aws.calling(f"snapshotting RDS instance {instance}"):
            rds.create_db_snapshot(
                DBInstanceIdentifier=instance,
                DBSnapshotIdentifier=identifier,
                Tags=[{"Key": "ManagedBy", "Value": "envplane"}],
            )
        progress(f"RDS snapshot {identifier} of {instance} requested")
    try:
        wait_db_snapshot(region, identifier, progress)
    except OperationFailed:
        delete_db_snapshot(region, identifier)
        raise
    found = db_snapshot(region, identifier)
    assert found is not None
    return _rds_snapshot(found)


def wait_db_snapshot(region: str, identifier: str, progress: Callable[[str], None]) -> Snapshot:
    def status() -> str | None:
        found = db_snapshot(region, identifier)
        return None if found is None else str(found.get("Status", ""))

    wait_until(f"RDS snapshot {identifier}", status, progress)
    found = db_snapshot(region, identifier)
    assert found is not None
    return _rds_snapshot(found)


def delete_db_snapshot(region: str, identifier: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    # Best effort: a failed snapshot left behind holds no data and is named in the error.
    with contextlib.suppress(BotoCoreError, ClientError):
        aws.client("rds", region).delete_db_snapshot(DBSnapshotIdentifier=identifier)


def wait_db_instance(region: str, identifier: str, progress: Callable[[str], None]) -> str:
    """Wait until the instance is available; its address."""

    def status() -> str | None:
        found = db_instance(region, identifier)
        return None if found is None else str(found.get("DBInstanceStatus", ""))

    wait_until(f"RDS instance {identifier}", status, progress)
    found = db_instance(region, identifier) or {}
    return str((found.get("Endpoint") or {}).get("Address", ""))


# --- ElastiCache -------------------------------------------------------------------------


def cache_snapshot(region: str, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    ec = aws.client("elasticache", region)
    with aws.calling(f"reading ElastiCache snapshot {name}"):
        try:
            found = ec.describe_snapshots(SnapshotName=name)["Snapshots"]
        except ClientError as exc:
            if _code(exc) == "SnapshotNotFoundFault":
                return None
            raise
    return dict(found[0]) if found else None


def _ec_snapshot(found: dict[str, Any]) -> Snapshot:
    return Snapshot(
        service="elasticache",
        identifier=str(found["SnapshotName"]),
        arn=str(found.get("ARN", "")),
        status=str(found.get("SnapshotStatus", "")),
        source=str(found.get("ReplicationGroupId") or found.get("CacheClusterId") or ""),
        details={
            "engine_version": str(found.get("EngineVersion", "")),
            "node_type": str(found.get("CacheNodeType", "")),
        },
    )


def wait_cache_snapshot(region: str, name: str, progress: Callable[[str], None]) -> Snapshot:
    def status() -> str | None:
        found = cache_snapshot(region, name)
        return None if found is None else str(found.get("SnapshotStatus", ""))

    wait_until(f"ElastiCache snapshot {name}", status, progress)
    found = cache_snapshot(region, name)
    assert found is not None
    return _ec_snapshot(found)


def snapshot_cache(region: str, group: str, name: str, progress: Callable[[str], None]) -> Snapshot:
    """A manual snapshot of a Redis replication group, waited on until available."""
    if cache_snapshot(region, name) is None:
        ec = aws.client("elasticache", region)
        with aws.calling(f"snapshotting ElastiCache group {group}"):
            ec.create_snapshot(ReplicationGroupId=group, SnapshotName=name)
        progress(f"ElastiCache snapshot {name} of {group} requested")
    try:
        return wait_cache_snapshot(region, name, progress)
    except OperationFailed:
        from botocore.exceptions import BotoCoreError, ClientError

        with contextlib.suppress(BotoCoreError, ClientError):
            aws.client("elasticache", region).delete_snapshot(SnapshotName=name)
        raise


def wait_cache_group(region: str, group: str, progress: Callable[[str], None]) -> None:
    from botocore.exceptions import ClientError

    ec = aws.client("elasticache", region)

    def status() -> str | None:
        with aws.calling(f"reading ElastiCache group {group}"):
            try:
                found = ec.describe_replication_groups(ReplicationGroupId=group)
            except ClientError as exc:
                if _code(exc) == "ReplicationGroupNotFoundFault":
                    return None
                raise
        groups = found.get("ReplicationGroups") or []
        return str(groups[0].get("Status", "")) if groups else None

    wait_until(f"ElastiCache group {group}", status, progress)
