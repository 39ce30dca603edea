"""Backups in S3: push a finished backup, pull one back. boto3 is imported here only, lazily.

The endpoint comes from AWS_ENDPOINT_URL (boto3 honours it), credentials from the usual AWS
variables or files. Layout: s3://bucket/prefix/<backup_id>/<file>, the manifest uploaded last
and downloaded first, so a half-pushed backup is never pulled. The backup key never leaves
this machine: encrypted backups stay encrypted in the bucket.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envplane.data import manifest as manifests
from envplane.data.manifest import MANIFEST, Manifest
from envplane.errors import BadInput, OperationFailed

URL_RE = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
PART = 64 << 20


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "a/b" (no slashes at either end)

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


def parse(url: str) -> S3Location:
    match = URL_RE.fullmatch(url or "")
    if not match:
        raise BadInput(f"invalid S3 location {url!r}: expected s3://bucket[/prefix]")
    prefix = (match.group(2) or "").strip("/")
    if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
        raise BadInput(f"invalid S3 prefix in {url!r}")
    return S3Location(match.group(1), prefix)


def _client() -> Any:
    try:
        import boto3
    except ImportError:
        raise BadInput(
            "S3 needs boto3, which is not installed", hint="pip install 'envplane[cloud]'"
        ) from None
    return boto3.client("s3")


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def push(folder: Path, manifest: Manifest, where: S3Location) -> list[str]:
    """Upload the components, then the manifest; returns the keys written."""
    from boto3.s3.transfer import TransferConfig

    client = _client()
    config = TransferConfig(multipart_chunksize=PART, multipart_threshold=PART)
    keys: list[str] = []
    try:
        for comp in manifest.components:
            key = where.key(manifest.backup_id, comp.file)
            client.upload_file(str(folder / comp.file), where.bucket, key, Config=config)
            keys.append(key)
        key = where.key(manifest.backup_id, MANIFEST)
        client.upload_file(str(folder / MANIFEST), where.bucket, key)
        keys.append(key)
    except _errors() as exc:
        raise OperationFailed(f"upload of {manifest.backup_id} to {where} failed: {exc}") from None
    return keys


def pull(where: S3Location, backup_id: str, backups_dir: Path) -> Path:
    """Download a backup into the local backups directory (manifest last) and return it.
    Sizes and hashes are checked by restore, like any local backup."""
    manifests.check_backup_id(backup_id)
    if where.prefix.rsplit("/", 1)[-1] == backup_id:  # s3://bucket/prefix/BACKUP_ID given
        where = S3Location(
            where.bucket, where.prefix.rsplit("/", 1)[0] if "/" in where.prefix else ""
        )
    client = _client()
    folder = backups_dir / backup_id
    if (folder / MANIFEST).exists():
        return folder  # already here; restore verifies it
    aside = backups_dir / f".pull-{backup_id}"
    shutil.rmtree(aside, ignore_errors=True)
    staged = aside / backup_id  # manifests.read wants the directory named by the id
    staged.mkdir(parents=True, mode=0o700)
    held = aside / MANIFEST
    try:
        try:
            client.download_file(
                where.bucket, where.key(backup_id, MANIFEST), str(staged / MANIFEST)
            )
        except _errors() as exc:
            raise BadInput(f"no backup {backup_id} at {where}: {exc}") from None
        manifest = manifests.read(staged)
        (staged / MANIFEST).rename(held)  # out of the way until every component is here
        for comp in manifest.components:
            key = where.key(backup_id, comp.file)
            client.download_file(where.bucket, key, str(staged / comp.file))
        held.rename(staged / MANIFEST)
        backups_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged.rename(folder)
    except _errors() as exc:
        raise OperationFailed(f"download of {backup_id} from {where} failed: {exc}") from None
    finally:
        shutil.rmtree(aside, ignore_errors=True)
    return folder
