"""A cache of validated matrices, so that commands reading a large, unchanged matrix skip its
parsing, inheritance and validation (1,000 environments: ~0.5 s down to ~0.15 s).

An entry is found by a digest of everything the result depends on: the file's text and path,
the source of this package (and of the modules it imports: names, errors), and the versions of
Python and pydantic. Editing the matrix, or upgrading or editing envplane, finds no entry and
loads afresh; nothing is ever invalidated by time. Only matrices that loaded without an error
are stored, so every error is still found, located and worded by the loader itself.

Entries are pickles, and a pickle is code to whoever can write it. So an entry is read only
from a directory and a file that belong to this user and nobody else can write, and only with
an HMAC (SHA-256) made with a random key kept beside the entries (0600): a file written by
anyone but envplane under this home is refused, silently loaded afresh and overwritten. A cache
that cannot be read or written (a read-only home) is skipped: it only ever saves time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import stat
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pydantic

if TYPE_CHECKING:
    from envplane.matrix.loader import Matrix

FORMAT = b"envplane.matrix-cache/1\n"
KEEP = 8  # entries kept per home: a few matrices (and branches of one) in turn
_KEY_FILE = "key"
_MAC_SIZE = hashlib.sha256().digest_size
_PACKAGE = Path(__file__).resolve().parent
_ALSO = ("names.py", "errors.py")  # outside this package, and what a load depends on


def load_cached(
    text: str, filename: str, directory: Path, build: Callable[[str, str], Matrix]
) -> Matrix:
    """The matrix `build(text, filename)` returns, from `directory` when an entry is there.
    Nothing is created under `directory` until a matrix has loaded without an error."""
    entry = directory / f"{_digest(text, filename)}.pickle"
    key = _key(directory, create=False)
    if key is not None:
        found = _read(entry, key)
        if found is not None:
            return found
    matrix = build(text, filename)  # raises on any problem: nothing is stored then
    key = key or _key(directory, create=True)
    if key is not None:
        _write(entry, key, matrix)
    return matrix


def _digest(text: str, filename: str) -> str:
    h = hashlib.sha256(FORMAT)
    h.update(_code_fingerprint())
    for part in (filename, text):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest()


@cache
def _code_fingerprint() -> bytes:
    """What identifies the code that loads a matrix: each source file's name, size and mtime
    (an editable install changes without its version), Python's and pydantic's versions."""
    h = hashlib.sha256(f"{sys.version}\n{pydantic.VERSION}\n".encode())
    files = sorted(_PACKAGE.glob("*.py")) + [_PACKAGE.parent / name for name in _ALSO]
    for path in files:
        st = path.stat()
        h.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.digest()


def _key(directory: Path, *, create: bool) -> bytes | None:
    """This home's cache key (made on first use when `create`); None when there is none or the
    directory or the key is not safe to use."""
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(directory)):
            return None
        path = directory / _KEY_FILE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            if not create:
                return None
            fd = _create_key(path)
        with os.fdopen(fd, "rb") as f:
            if not _private(os.fstat(f.fileno())):
                return None
            key = f.read()
    except OSError:
        return None
    return key if len(key) == 32 else None


def _create_key(path: Path) -> int:
    tmp = path.with_name(f".{_KEY_FILE}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    try:
        os.link(tmp, path)  # a key another command made meanwhile wins: entries stay readable
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW)


def _private(st: os.stat_result) -> bool:
    """Owned by this user, and nobody else may write it."""
    return st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(entry: Path, key: bytes) -> Matrix | None:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not _private(os.fstat(f.fileno())):
            return None
        blob = f.read()
    mac, payload = blob[:_MAC_SIZE], blob[_MAC_SIZE:]
    if not hmac.compare_digest(mac, hmac.digest(key, payload, "sha256")):
        return None
    from envplane.matrix.loader import Matrix, collector_paused

    try:
        with collector_paused():  # as a load from the file is
            found = pickle.loads(payload)  # noqa: S301 - its HMAC was checked just above
    except Exception:  # an entry of an older layout despite its digest: load afresh
        return None
    return found if isinstance(found, Matrix) else None


def _write(entry: Path, key: bytes, matrix: Matrix) -> None:
    try:
        payload = pickle.dumps(matrix, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # something in it cannot be pickled: not worth failing a command for
        return
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(hmac.digest(key, payload, "sha256"))
            f.write(payload)
        os.replace(tmp, entry)
        _prune(entry.parent)
    except OSError:
        tmp.unlink(missing_ok=True)


def _prune(directory: Path) -> None:
    """Keep the KEEP entries used or written last (a hit does not touch an entry's mtime, so
    this is the last written: good enough for a cache that only saves time)."""
    dated = []
    for path in directory.glob("*.pickle"):
        try:
            dated.append((path.stat().st_mtime_ns, path))
        except FileNotFoundError:  # pruned by another command meanwhile
            continue
    for _, old in sorted(dated, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
