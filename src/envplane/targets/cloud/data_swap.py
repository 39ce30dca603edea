"""Where a cloud environment's data lives (read from its rendered Terraform files), and the swap
of an RDS instance or a Redis group for one made from a snapshot, through Terraform.

The swap writes the environment's files plus `restore_override.tf.json` (render/cloud/
tf_data.snapshot_override: `snapshot_identifier` / `snapshot_name` set and no longer ignored),
runs `plan -replace=ADDRESS -out=tfplan` and applies that plan: Terraform builds the new
instance from the snapshot under the same identifier, so every endpoint stays the same; the old
one leaves its final snapshot. The next apply of the environment writes its files without the
override, and the snapshot attributes are ignored there, so nothing is replaced again."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from envplane.errors import OperationFailed
from envplane.render.cloud import tf_data
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import EnvContext
from envplane.targets.cloud import infra

_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def _block(files: Mapping[str, str], file: str, kind: str) -> dict[str, Any] | None:
    text = files.get(file)
    if text is None:
        return None
    body = (
        json.loads(text)
        .get("resource", {})
        .get(kind, {})
        .get("main" if kind != "aws_s3_bucket" else "storage")
    )
    return dict(body) if isinstance(body, dict) else None


def data_resources(desired: DesiredEnvironment) -> list[Resource]:
    """postgres (the RDS instance), redis (the replication group), storage (the bucket), as the
    environment's Terraform files name them; each carries what the swap needs."""
    tf = next((r for r in desired.resources if r.kind == "terraform"), None)
    if tf is None:
        return []
    files: Mapping[str, str] = tf.spec.get("files", {})
    region = str(tf.spec.get("region", ""))
    terraform = {"files": dict(files), "backend": dict(tf.spec.get("backend", {}))}
    out = []
    db = _block(files, "database.tf.json", "aws_db_instance")
    if db is not None:
        spec = {"region": region, "instance": db["identifier"], "database": db.get("db_name", ""),
                "engine_version": db.get("engine_version", ""), "terraform": terraform}  # fmt: skip
        out.append(Resource("postgres", "postgres", spec))
    cache = _block(files, "cache.tf.json", "aws_elasticache_replication_group")
    if cache is not None:
        spec = {"region": region, "group": cache["replication_group_id"], "terraform": terraform}
        out.append(Resource("redis", "redis", spec))
    bucket = _block(files, "storage.tf.json", "aws_s3_bucket")
    if bucket is not None:
        out.append(Resource("storage", "storage", {"region": region, "bucket": bucket["bucket"]}))
    return out


def _lock(key: str) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def swap(
    ctx: EnvContext,
    resource: Resource,
    *,
    database: str | None = None,
    cache: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Replace the environment's RDS instance (`database`: a DB snapshot identifier) or Redis
    group (`cache`: an ElastiCache snapshot name) with one made from that snapshot."""
    say = progress or ctx.progress
    terraform = resource.spec.get("terraform")
    if not isinstance(terraform, Mapping) or "files" not in terraform:
        raise OperationFailed(f"{resource.key}: the environment records no Terraform files")
    address = tf_data.DB_ADDRESS if database is not None else tf_data.CACHE_ADDRESS
    files = dict(terraform["files"])
    files[tf_data.OVERRIDE_FILE] = tf_data.snapshot_override(database=database, cache=cache)
    # One Terraform at a time in a working directory (a restore swaps both side by side).
    with _lock(str(infra.workdir(ctx))):
        tf = infra.ready(ctx, {"files": files, "backend": terraform["backend"]})
        say(f"{address}: replaced from snapshot {database or cache} through Terraform")
        tf.plan(address)
        tf.apply_plan()
