"""The key that encrypts secrets: ENVPLANE_SECRET_KEY, else `<home>/secret.key` (mode 0600).

The key itself is never logged or put in a message; only a one-way fingerprint is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from envplane.errors import BadInput

if TYPE_CHECKING:  # cryptography loads in ~20 ms: only commands that touch secrets pay it
    from cryptography.fernet import Fernet

ENV_VAR = "ENVPLANE_SECRET_KEY"
KEY_FILE = "secret.key"
_GENERATE = (
    "generate one with `python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'`"
)


@dataclass(frozen=True)
class SecretKey:
    fernet: Fernet
    key_id: str  # fingerprint, safe to store
    source: str  # where it came from, for messages


def fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"envplane-secret-key-id:" + key).hexdigest()[:16]


def _fernet(key: bytes, *, source: str, hint: str) -> SecretKey:
    from cryptography.fernet import Fernet

    try:
        fernet = Fernet(key)
    except (ValueError, TypeError):
        raise BadInput(
            f"{source} does not hold a valid key (32 url-safe base64-encoded bytes)", hint=hint
        ) from None
    return SecretKey(fernet=fernet, key_id=fingerprint(key), source=source)


def load_key(home: Path) -> SecretKey:
    from_env = os.environ.get(ENV_VAR)
    if from_env:
        return _fernet(
            from_env.strip().encode(),
            source=ENV_VAR,
            hint=f"{_GENERATE}, or unset {ENV_VAR} to use {home / KEY_FILE}",
        )
    path = home / KEY_FILE
    if not path.exists():
        _create(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise BadInput(
            f"secret key file {path} can be read by other users (mode {mode:04o})",
            hint=f"run `chmod 600 {path}`",
        )
    return _fernet(
        path.read_bytes().strip(),
        source=str(path),
        hint=f"restore the original {path}, or set {ENV_VAR}",
    )


def _create(path: Path) -> None:
    """Write a new key aside, then link it in: a racing process finds all of it or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    from cryptography.fernet import Fernet

    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: use theirs
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
