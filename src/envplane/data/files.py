"""Component files: written through a hashing (and optionally encrypting) writer; read back
through a verifying (and decrypting) pass before anything is restored from them."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from envplane.data import crypto
from envplane.data.manifest import Component, Manifest
from envplane.errors import OperationFailed

READ = 4 << 20


class ComponentWriter:
    """A Sink: bytes in, stored bytes out to `path`; counts and hashes what is stored."""

    def __init__(self, path: Path, key: bytes | None) -> None:
        self.path = path
        self._handle = open(path, "xb")  # noqa: SIM115 - closed in close()
        os.chmod(path, 0o600)
        self._hash = hashlib.sha256()
        self._size = 0
        self._encryptor = crypto.Encryptor(key) if key is not None else None
        if self._encryptor is not None:
            self._out(self._encryptor.header)

    def _out(self, data: bytes) -> None:
        self._handle.write(data)
        self._hash.update(data)
        self._size += len(data)

    def write(self, data: bytes, /) -> int:
        if self._encryptor is None:
            self._out(data)
        else:
            for sealed in self._encryptor.update(data):
                self._out(sealed)
        return len(data)

    def close(self, name: str, fmt: str) -> Component:
        if self._encryptor is not None:
            self._out(self._encryptor.finish())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        return Component(name, self.path.name, self._size, self._hash.hexdigest(), fmt)

    def abort(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


def _corrupt(folder: Path, comp: Component, why: str) -> OperationFailed:
    return OperationFailed(
        f"backup {folder.name} is damaged: component {comp.name} ({comp.file}) {why}; "
        "nothing was restored",
        hint="pick another backup (`envplane backups`), or pull a good copy of this one",
    )


def stage(folder: Path, manifest: Manifest, staging: Path, key: bytes | None) -> dict[str, Path]:
    """Check every component's size and sha256 (decrypting into `staging` when encrypted) and
    return component name -> a plain file to restore from. Raises before anything is touched."""
    if manifest.encryption and key is not None:
        wanted = manifest.encryption.get("key_id")
        if wanted and wanted != crypto.key_id(key):
            raise crypto.WrongKey(
                f"backup {manifest.backup_id} was encrypted with another key "
                f"(key id {wanted}, this key is {crypto.key_id(key)})",
                hint=f"set {crypto.KEY_ENV} to the key the backup was made with",
            )
    plain: dict[str, Path] = {}
    for comp in manifest.components:
        path = folder / comp.file
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _corrupt(folder, comp, "is missing") from None
        if size != comp.bytes:
            raise _corrupt(folder, comp, f"has {size} bytes, the manifest says {comp.bytes}")
        if manifest.encryption:
            assert key is not None
            target = staging / comp.file
            digest = _decrypt_checking(path, target, key, folder, comp)
            plain[comp.name] = target
        else:
            digest = _sha256(path)
            plain[comp.name] = path
        if digest != comp.sha256:
            raise _corrupt(folder, comp, "does not match its sha256")
    return plain


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ):
            digest.update(chunk)
    return digest.hexdigest()


class _Hashing:
    def __init__(self, path: Path) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _decrypt_checking(source: Path, target: Path, key: bytes, folder: Path, comp: Component) -> str:
    """Decrypt to `target` while hashing the ciphertext; the hash is checked by the caller, and
    a failed authentication is reported as corruption (or a wrong key)."""
    reader = _Hashing(source)
    try:
        with open(target, "wb") as out:
            os.chmod(target, 0o600)
            try:
                for plain in crypto.decrypt_stream(key, reader, name=comp.file):  # type: ignore[arg-type]
                    out.write(plain)
            except crypto.WrongKey:
                if _sha256(source) != comp.sha256:
                    raise _corrupt(folder, comp, "does not match its sha256") from None
                raise
            except OperationFailed as exc:
                raise _corrupt(folder, comp, f"cannot be read: {exc.message}") from None
    finally:
        reader.close()
    return reader.digest.hexdigest()


def new_staging(home: Path, label: str) -> Path:
    base = home / "tmp"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder = base / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(mode=0o700)
    return folder
