"""The backup manifest: what a backup holds, written last and atomically.

A backup directory without a valid manifest.json is an unfinished backup: never listed, never
restorable. Ids read `backup-<env>-<YYYYmmdd-HHMMSS>`, with `-<n>` when two backups of one
environment start within the same second.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, OperationFailed
from envplane.names import check_env_name

MANIFEST = "manifest.json"
BACKUP_TYPES = ("config", "data", "full")
ID_RE = re.compile(r"^backup-([a-z0-9-]{3,30})-(\d{8}-\d{6})(?:-(\d{1,4}))?$")
FILE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Component:
    name: str  # config | postgres | redis | storage
    file: str  # relative to the backup directory
    bytes: int  # of the stored file (encrypted, when encryption is on)
    sha256: str  # of the stored file
    format: str = ""
    details: dict[str, str] = field(default_factory=dict)  # what importing it needs to know


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    source_environment: str
    backup_type: str
    created_at: str  # ISO 8601, UTC
    created_by: str
    envplane_version: str
    target: str = "local"
    encryption: dict[str, str] | None = None  # {"algorithm": ..., "key_id": ...}
    components: list[Component] = field(default_factory=list)

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    @property
    def total_bytes(self) -> int:
        return sum(c.bytes for c in self.components)

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_backup_id(backup_id: str) -> str:
    if not isinstance(backup_id, str) or not ID_RE.fullmatch(backup_id):
        raise BadInput(
            f"invalid backup id {backup_id!r}: expected backup-<env>-<YYYYmmdd-HHMMSS>",
            hint="`envplane backups` lists the backups and their ids",
        )
    return backup_id


def new_id(env: str, at: datetime) -> str:
    return f"backup-{check_env_name(env)}-{at.astimezone(UTC):%Y%m%d-%H%M%S}"


def reserve(backups_dir: Path, env: str, at: datetime) -> tuple[str, Path]:
    """Create the backup's directory under a fresh id; mkdir is the uniqueness guard."""
    backups_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    base = new_id(env, at)
    for n in range(1, 1000):
        backup_id = base if n == 1 else f"{base}-{n}"
        folder = backups_dir / backup_id
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return backup_id, folder
    raise OperationFailed(f"could not allocate a backup id for {env} at {base}")


def write(folder: Path, manifest: Manifest) -> None:
    """Write aside, fsync, rename: the manifest appears whole or not at all."""
    data = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{MANIFEST}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, folder / MANIFEST)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _details(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        raise ValueError(f"{where}.details is not an object of strings")
    return dict(raw)


def _component(raw: Any, where: str) -> Component:
    if not isinstance(raw, dict):
        raise ValueError(f"{where} is not an object")
    comp = Component(
        name=str(raw["name"]),
        file=str(raw["file"]),
        bytes=int(raw["bytes"]),
        sha256=str(raw["sha256"]),
        format=str(raw.get("format", "")),
        details=_details(raw.get("details"), where),
    )
    if not FILE_RE.fullmatch(comp.file) or comp.file == MANIFEST:
        raise ValueError(f"{where}: unsafe file name {comp.file!r}")
    if not HEX64.fullmatch(comp.sha256) or comp.bytes < 0:
        raise ValueError(f"{where}: bad sha256 or size")
    return comp


def read(folder: Path) -> Manifest:
    """The manifest of a backup directory; OperationFailed when it is damaged."""
    path = folder / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        manifest = Manifest(
            backup_id=check_backup_id(str(raw["backup_id"])),
            source_environment=check_env_name(str(raw["source_environment"])),
            backup_type=str(raw["backup_type"]),
            created_at=str(raw["created_at"]),
            created_by=str(raw["created_by"]),
            envplane_version=str(raw["envplane_version"]),
            target=str(raw.get("target", "local")),
            encryption=dict(raw["encryption"]) if raw.get("encryption") else None,
            components=[_component(c, f"components[{i}]") for i, c in enumerate(raw["components"])],
        )
        manifest.created  # noqa: B018 - a malformed date is a damaged manifest
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, BadInput) as exc:
        raise OperationFailed(
            f"backup manifest {path} is damaged: {exc}",
            hint="this backup cannot be restored; pick another one (`envplane backups`)",
        ) from None
    if manifest.backup_id != folder.name or manifest.backup_type not in BACKUP_TYPES:
        raise OperationFailed(f"backup manifest {path} does not describe {folder.name}")
    return manifest
