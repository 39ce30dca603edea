"""Component files: written through a hashing (and optionally encrypting) writer; read back
through a verifying (and decrypting) pass before anything is restored from them."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from envplane.data import crypto
from envplane.data.manifest import Component, Manifest
from envplane.errors import OperationFailed
from envplane.events import BytesDone, EventSink
from envplane.targets.datacaps import Sink, Unpacker

READ = 4 << 20
PROGRESS_SECONDS = 0.5
PROGRESS_BYTES = 64 << 20


class Meter:
    """Bytes done of one component, as `BytesDone` events: one when `PROGRESS_SECONDS` have
    passed or `PROGRESS_BYTES` were added since the last, and a last one, done == total,
    when it is complete. `total` may be an estimate (a backup's measured sizes): once the
    bytes pass it, it is no longer said (None) until the end."""

    def __init__(self, what: str, total: int | None, events: EventSink) -> None:
        self.what, self.total, self.done = what, total, 0
        self._events = events
        self._at, self._reported = time.monotonic(), 0

    def add(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._at < PROGRESS_SECONDS and self.done - self._reported < PROGRESS_BYTES:
            return
        self._at, self._reported = now, self.done
        total = self.total if self.total is not None and self.done < self.total else None
        self._events(BytesDone(self.what, self.done, total))

    def complete(self) -> None:
        self._events(BytesDone(self.what, self.done, self.done))


class ComponentWriter:
    """A Sink: bytes in, stored bytes out to `path`; counts and hashes what is stored. With
    `events`, reports the bytes taken in as `BytesDone(what, done, total)` (`Meter`)."""

    def __init__(
        self,
        path: Path,
        key: bytes | None,
        *,
        what: str | None = None,
        total: int | None = None,
        events: EventSink | None = None,
    ) -> None:
        self.path = path
        self._handle = open(path, "xb")  # noqa: SIM115 - closed in close()
        os.chmod(path, 0o600)
        self._hash = hashlib.sha256()
        self._size = 0
        self._meter = Meter(what or path.name, total, events) if events is not None else None
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
        if self._meter is not None:
            self._meter.add(len(data))
        return len(data)

    def close(self, name: str, fmt: str, details: dict[str, str] | None = None) -> Component:
        if self._encryptor is not None:
            self._out(self._encryptor.finish())
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        if self._meter is not None:
            self._meter.complete()
        return Component(
            name, self.path.name, self._size, self._hash.hexdigest(), fmt, dict(details or {})
        )

    def abort(self) -> None:
        self._handle.close()
        self.path.unlink(missing_ok=True)


def _corrupt(folder: Path, comp: Component, why: str) -> OperationFailed:
    return OperationFailed(
        f"backup {folder.name} is damaged: component {comp.name} ({comp.file}) {why}; "
        "nothing was restored",
        hint="pick another backup (`envplane backups`), or pull a good copy of this one",
    )


def stage(
    folder: Path,
    manifest: Manifest,
    staging: Path,
    key: bytes | None,
    unpackers: Mapping[str, Callable[[], Unpacker | None]] | None = None,
    events: EventSink | None = None,
) -> dict[str, Path]:
    """Check every component's size and sha256 and return component name -> what to restore
    from: a plain file (decrypted into `staging` when encrypted), or for a component with an
    unpacker, what the unpacker made of it while it was being checked. Raises - having thrown
    away anything unpacked - before the environment is touched. With `events`, the stored
    bytes read of each component are reported as `BytesDone` (`Meter`)."""
    if manifest.encryption and key is not None:
        wanted = manifest.encryption.get("key_id")
        if wanted and wanted != crypto.key_id(key):
            raise crypto.WrongKey(
                f"backup {manifest.backup_id} was encrypted with another key "
                f"(key id {wanted}, this key is {crypto.key_id(key)})",
                hint=f"set {crypto.KEY_ENV} to the key the backup was made with",
            )
    plain: dict[str, Path] = {}
    try:
        for comp in manifest.components:
            path = folder / comp.file
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                raise _corrupt(folder, comp, "is missing") from None
            if size != comp.bytes:
                raise _corrupt(folder, comp, f"has {size} bytes, the manifest says {comp.bytes}")
            meter = Meter(comp.name, comp.bytes, events) if events is not None else None
            make = (unpackers or {}).get(comp.name)
            unpacker = make() if make is not None else None
            if unpacker is not None:
                plain[comp.name] = _unpack_checking(path, unpacker, key, folder, comp, meter)
            elif manifest.encryption:
                assert key is not None
                target = staging / comp.file
                with open(target, "wb") as out:
                    os.chmod(target, 0o600)
                    digest = _read_checking(path, out, key, folder, comp, meter)
                plain[comp.name] = target
                if digest != comp.sha256:
                    raise _corrupt(folder, comp, "does not match its sha256")
            else:
                if _sha256(path, meter) != comp.sha256:
                    raise _corrupt(folder, comp, "does not match its sha256")
                plain[comp.name] = path
            if meter is not None:
                meter.complete()
    except BaseException:
        discard(plain)
        raise
    return plain


def discard(plain: Mapping[str, Path]) -> None:
    """Remove what `stage` unpacked and nobody used (directories: files are the backup's own
    or in the staging directory, removed with it)."""
    for path in plain.values():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _unpack_checking(
    path: Path,
    unpacker: Unpacker,
    key: bytes | None,
    folder: Path,
    comp: Component,
    meter: Meter | None = None,
) -> Path:
    try:
        try:
            digest = _read_checking(path, unpacker, key, folder, comp, meter)
            if digest != comp.sha256:
                raise _corrupt(folder, comp, "does not match its sha256")
            return unpacker.finish()
        except OperationFailed:
            # The unpacker may choke on damaged bytes before the hash is known: say "damaged"
            # when that is what it is, rather than what the unpacker made of it.
            if _sha256(path) != comp.sha256:
                raise _corrupt(folder, comp, "does not match its sha256") from None
            raise
    except BaseException:
        unpacker.abort()
        raise


def _sha256(path: Path, meter: Meter | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(READ):
            digest.update(chunk)
            if meter is not None:
                meter.add(len(chunk))
    return digest.hexdigest()


class _Hashing:
    def __init__(self, path: Path, meter: Meter | None = None) -> None:
        self._handle = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
        self.digest = hashlib.sha256()
        self._meter = meter

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self.digest.update(data)
        if self._meter is not None:
            self._meter.add(len(data))
        return data

    def close(self) -> None:
        self._handle.close()


def _read_checking(
    source: Path,
    out: Sink,
    key: bytes | None,
    folder: Path,
    comp: Component,
    meter: Meter | None = None,
) -> str:
    """Copy the plaintext of `source` into `out` (decrypting if `key`) while hashing the
    stored bytes (counted by `meter`); returns the hash for the caller to check. A failed
    authentication is reported as corruption (or a wrong key)."""
    reader = _Hashing(source, meter)
    try:
        if key is None:
            while chunk := reader.read(READ):
                out.write(chunk)
            return reader.digest.hexdigest()
        chunks = crypto.decrypt_stream(key, reader, name=comp.file)  # type: ignore[arg-type]
        while True:
            # Only what decrypting says is about the file; a failing `out` is reported as itself.
            try:
                plain = next(chunks, None)
            except crypto.WrongKey:
                if _sha256(source) != comp.sha256:
                    raise _corrupt(folder, comp, "does not match its sha256") from None
                raise
            except OperationFailed as exc:
                raise _corrupt(folder, comp, f"cannot be read: {exc.message}") from None
            if plain is None:
                break
            out.write(plain)
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
