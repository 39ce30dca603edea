"""The storage bucket's objects for the cloud data driver.

Backup: every object streamed into one tar (`objects/<key>`), then an index
(`index.json`: key -> size, ETag, sha256 of the bytes read). Restore: the tar is unpacked aside
while the backup is verified, every object checked against the index (size, sha256) before
anything is uploaded; then the bucket is made exactly the backup's (what differs uploaded,
what the backup does not hold deleted) and every object's ETag checked. Clone: server-side
copies, each checked by ETag."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.cloud import aws
from envplane.targets.datacaps import ExportFormat, Sink

FORMAT = "s3-objects-tar"
INDEX = "index.json"
PREFIX = "objects/"
CHUNK = 1 << 20


class _SinkFile:
    """What tarfile writes to (stream mode): only `write` is needed."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink

    def write(self, data: bytes) -> int:
        self._sink.write(data)
        return len(data)


class _Hashing:
    """An object's body read by tarfile, hashed on the way."""

    def __init__(self, body: Any) -> None:
        self._body, self.digest, self.size = body, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = bytes(self._body.read(size if size >= 0 else None))
        self.digest.update(data)
        self.size += len(data)
        return data


def safe_key(key: str) -> bool:
    parts = PurePosixPath(key).parts
    return (
        bool(parts)
        and not key.endswith("/")
        and not key.startswith("/")
        and all(p not in ("", ".", "..") for p in parts)
    )


def objects(region: str, bucket: str) -> dict[str, tuple[int, str]]:
    """key -> (size, ETag without quotes)."""
    s3 = aws.client("s3", region)
    found: dict[str, tuple[int, str]] = {}
    with aws.calling(f"listing s3://{bucket}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                found[str(obj["Key"])] = (int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))
    return found


def export(region: str, bucket: str, sink: Sink) -> ExportFormat:
    s3 = aws.client("s3", region)
    index: dict[str, dict[str, Any]] = {}
    skipped = 0
    with (
        aws.calling(f"reading s3://{bucket}"),
        tarfile.open(
            fileobj=_SinkFile(sink),  # type: ignore[call-overload]
            mode="w|",
            format=tarfile.PAX_FORMAT,
        ) as tar,
    ):
        for key, (size, etag) in sorted(objects(region, bucket).items()):
            if not safe_key(key):
                skipped += 1  # directory markers, keys that would leave the folder
                continue
            body = _Hashing(s3.get_object(Bucket=bucket, Key=key)["Body"])
            info = tarfile.TarInfo(PREFIX + key)
            info.size, info.mode = size, 0o600
            tar.addfile(info, body)
            if body.size != size:
                raise OperationFailed(f"s3://{bucket}/{key} changed while it was read")
            index[key] = {"size": size, "etag": etag, "sha256": body.digest.hexdigest()}
        text = json.dumps(index, indent=1, sort_keys=True).encode()
        info = tarfile.TarInfo(INDEX)
        info.size, info.mode = len(text), 0o600
        tar.addfile(info, io.BytesIO(text))
    details = {
        "bucket": bucket,
        "objects": str(len(index)),
        "bytes": str(sum(int(v["size"]) for v in index.values())),
        "index_sha256": hashlib.sha256(text).hexdigest(),
        "skipped_keys": str(skipped),
    }
    return ExportFormat(FORMAT, details)


class ObjectsUnpacker:
    """The tar written aside while it is verified, then unpacked and every object checked
    against its index (finish): a directory holding `objects/` and `index.json`."""

    def __init__(self, near: Path) -> None:
        base = near if near.is_dir() else None
        self._dir = Path(tempfile.mkdtemp(prefix=".restore-objects-", dir=base))
        self._tar = self._dir / "objects.tar"
        self._handle = self._tar.open("wb")

    def write(self, data: bytes, /) -> int:
        self._handle.write(data)
        return len(data)

    def finish(self) -> Path:
        self._handle.close()
        out = self._dir / "tree"
        with tarfile.open(self._tar, mode="r:") as tar:
            for member in tar:  # regular files under safe names only, nothing else
                name = member.name
                inside = name == INDEX or (
                    name.startswith(PREFIX) and safe_key(name[len(PREFIX) :])
                )
                if not member.isfile() or not inside:
                    raise OperationFailed(f"the objects' backup holds an unsafe entry {name!r}")
                target = out.joinpath(*PurePosixPath(name).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, target.open("wb") as handle:
                    shutil.copyfileobj(source, handle, CHUNK)
        self._tar.unlink()
        check_tree(out)
        return out

    def abort(self) -> None:
        self._handle.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _sha256(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            sha.update(block)
            md5.update(block)
    return sha.hexdigest(), md5.hexdigest()


def check_tree(tree: Path) -> dict[str, dict[str, Any]]:
    """Every object of an unpacked backup against its index; OperationFailed naming the first
    that differs (nothing has been uploaded yet)."""
    try:
        index = json.loads((tree / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise OperationFailed(
            "the objects' backup has no readable index; nothing was restored"
        ) from None
    root = tree / PREFIX
    files = (
        {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
        if root.is_dir()
        else set()
    )
    if files != set(index):
        extra = sorted(files ^ set(index))[:3]
        raise OperationFailed(f"the objects' backup does not match its index ({', '.join(extra)})")
    for key, meta in index.items():
        path = root / key
        sha, md5 = _sha256(path)
        if path.stat().st_size != meta["size"] or sha != meta["sha256"]:
            raise OperationFailed(f"object {key} does not match its sha256; nothing was restored")
        meta["md5"] = md5
    return dict(index)


def import_(region: str, bucket: str, tree: Path) -> dict[str, int]:
    """Make the bucket exactly the backup's; every object's ETag checked afterwards."""
    index = check_tree(tree)
    s3 = aws.client("s3", region)
    now = objects(region, bucket)
    uploaded = deleted = 0
    with aws.calling(f"restoring s3://{bucket}"):
        for key, meta in sorted(index.items()):
            size, etag = now.get(key, (-1, ""))
            if size == meta["size"] and etag == meta["md5"]:
                continue
            s3.upload_file(str(tree / PREFIX / key), bucket, key)
            uploaded += 1
        for key in sorted(set(now) - set(index)):
            s3.delete_object(Bucket=bucket, Key=key)
            deleted += 1
    after = objects(region, bucket)
    for key, meta in index.items():
        size, etag = after.get(key, (-1, ""))
        if size != meta["size"] or ("-" not in etag and etag != meta["md5"]):
            raise OperationFailed(f"s3://{bucket}/{key} does not match the backup after upload")
    if set(after) != set(index):
        raise OperationFailed(f"s3://{bucket} holds other objects than the backup after restore")
    return {"uploaded": uploaded, "deleted": deleted, "objects": len(index)}


def copy(region: str, src: str, dst: str) -> dict[str, int]:
    """dst made exactly src by server-side copies (src is only read); ETags checked."""
    s3 = aws.client("s3", region)
    source, now = objects(region, src), objects(region, dst)
    copied = deleted = 0
    with aws.calling(f"copying s3://{src} to s3://{dst}"):
        for key, (size, etag) in sorted(source.items()):
            if now.get(key) == (size, etag):
                continue
            s3.copy({"Bucket": src, "Key": key}, dst, key)
            copied += 1
        for key in sorted(set(now) - set(source)):
            s3.delete_object(Bucket=dst, Key=key)
            deleted += 1
    after = objects(region, dst)
    differ = sorted(k for k, v in source.items() if after.get(k, (-1, ""))[0] != v[0]
                    or ("-" not in v[1] and after.get(k, (-1, ""))[1] != v[1]))  # fmt: skip
    if differ or set(after) != set(source):
        raise OperationFailed(f"s3://{dst} does not match s3://{src} after the copy: {differ[:3]}")
    return {"copied": copied, "deleted": deleted, "objects": len(source)}
