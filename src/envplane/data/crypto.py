"""Backup files encrypted at rest: AES-256-GCM over fixed-size chunks, streamed.

Format: MAGIC | chunk size (4 bytes, big-endian) | random 7-byte nonce prefix, then one
AES-GCM ciphertext (+16-byte tag) per chunk of plaintext. Chunk i's nonce is
prefix | i (4 bytes) | 1 for the last chunk else 0, and the header is the associated data:
reordered, dropped, truncated or appended chunks fail authentication (the STREAM construction).
Nothing larger than one chunk is ever held in memory.

The key comes from ENVPLANE_BACKUP_KEY (32 bytes in base64, or a passphrase stretched with
scrypt), else from ENVPLANE_HOME/keys/backup.key (0600, made on first use) - never from the
backups directory, so a copy of the backups alone cannot be read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from envplane.errors import BadInput, EnvplaneError, OperationFailed

MAGIC = b"EPBK\x00\x01"
CHUNK = 4 << 20
TAG = 16
PREFIX = 7
HEADER = len(MAGIC) + 4 + PREFIX
KEY_ENV = "ENVPLANE_BACKUP_KEY"
ALGORITHM = "AES-256-GCM-STREAM"


class WrongKey(EnvplaneError):
    """The backup was encrypted with another key, or its bytes were changed."""


def _from_text(value: str) -> bytes:
    text = value.strip()
    for decode in (base64.urlsafe_b64decode, base64.b64decode):
        try:
            raw = decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == 32:
            return raw
    if len(text) < 12:
        raise BadInput(
            f"{KEY_ENV} is too short: give 32 bytes in base64 or a passphrase of 12+ characters"
        )
    return hashlib.scrypt(text.encode(), salt=b"envplane-backup-key", n=1 << 14, r=8, p=1, dklen=32)


def key_file(home: Path) -> Path:
    return home / "keys" / "backup.key"


def load_key(home: Path, *, create: bool) -> bytes:
    """The backup key: from the environment variable, else the key file (made if `create`)."""
    value = os.environ.get(KEY_ENV)
    if value:
        return _from_text(value)
    path = key_file(home)
    if not path.exists():
        if not create:
            raise WrongKey(
                f"no backup key: {KEY_ENV} is not set and {path} does not exist",
                hint=f"set {KEY_ENV} to the key the backup was made with",
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path.parent, 0o700)
        encoded = base64.urlsafe_b64encode(secrets.token_bytes(32))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another backup made it first: use theirs
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(encoded + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
    return _from_text(path.read_text(encoding="ascii"))


def key_id(key: bytes) -> str:
    """A one-way fingerprint that names the key in manifests without revealing it."""
    return hashlib.sha256(b"envplane-backup-key-id\x00" + key).hexdigest()[:16]


def _aead(key: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _nonce(prefix: bytes, index: int, last: bool) -> bytes:
    if index >= 1 << 32:
        raise OperationFailed("file too large for one encrypted stream")
    return prefix + struct.pack(">I", index) + (b"\x01" if last else b"\x00")


class Encryptor:
    """Turns a plaintext stream into the encrypted format; `update` returns bytes to write."""

    def __init__(self, key: bytes, chunk: int = CHUNK) -> None:
        self._aead = _aead(key)
        self._chunk = chunk
        self._prefix = secrets.token_bytes(PREFIX)
        self.header = MAGIC + struct.pack(">I", chunk) + self._prefix
        self._buffer = bytearray()
        self._index = 0

    def update(self, data: bytes) -> list[bytes]:
        self._buffer += data
        out: list[bytes] = []
        # Keep at least one byte back: only `finish` may seal the last chunk.
        while len(self._buffer) > self._chunk:
            piece = bytes(self._buffer[: self._chunk])
            del self._buffer[: self._chunk]
            out.append(self._seal(piece, last=False))
        return out

    def finish(self) -> bytes:
        return self._seal(bytes(self._buffer), last=True)

    def _seal(self, piece: bytes, *, last: bool) -> bytes:
        sealed: bytes = self._aead.encrypt(
            _nonce(self._prefix, self._index, last), piece, self.header
        )
        self._index += 1
        return sealed


def decrypt_stream(key: bytes, source: BinaryIO, *, name: str) -> Iterator[bytes]:
    """Yield the plaintext of an encrypted file, chunk by chunk, authenticating each."""
    from cryptography.exceptions import InvalidTag

    header = source.read(HEADER)
    if len(header) != HEADER or not header.startswith(MAGIC):
        raise OperationFailed(f"{name} is not an envplane encrypted backup file (bad header)")
    chunk = struct.unpack(">I", header[len(MAGIC) : len(MAGIC) + 4])[0]
    if not 0 < chunk <= 64 << 20:
        raise OperationFailed(f"{name}: implausible chunk size {chunk}")
    prefix = header[len(MAGIC) + 4 :]
    aead = _aead(key)
    index = 0
    sealed = source.read(chunk + TAG)
    while True:
        following = source.read(chunk + TAG)
        last = not following
        try:
            yield aead.decrypt(_nonce(prefix, index, last), sealed, header)
        except InvalidTag:
            raise WrongKey(
                f"{name}: cannot decrypt chunk {index}: wrong backup key or damaged file",
                hint=f"set {KEY_ENV} to the key the backup was made with",
            ) from None
        if last:
            return
        sealed = following
        index += 1
