"""The client side of the warm server (docs/warm.md): where its socket is, what identifies the
installation it serves, and the wire protocol both ends speak.

Standard library only, and nothing of envplane's: the console script imports this module
before deciding whether to import the CLI at all, so every import here is paid by a cold run.

The protocol is length-prefixed JSON (never pickle: a frame is data, not code), each frame a
4-byte big-endian length and a UTF-8 JSON object. A command's request carries the caller's
standard file descriptors as SCM_RIGHTS ancillary data beside its length prefix, so the child
that runs it writes to the caller's terminal or pipe itself, and reads its stdin.

Paths are strings here, and typing, pathlib and contextlib are not imported: a warm command's
whole cost is this process's start, and they are a third of its imports.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any

    StrPath = str | os.PathLike[str]

# the envplane package this client belongs to
PACKAGE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
MAX_FRAME = 1 << 20  # a request (argv, cwd, env) is far smaller; anything bigger is refused
MAX_SUN_PATH = 107  # sockaddr_un.sun_path is 108 bytes with its NUL
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Interpreter settings a forked child cannot take from the caller, so a caller whose differ
# from the server's runs cold (PYTHONIOENCODING and PYTHONUNBUFFERED the child does honour).
_CHILD_HONOURS = ("PYTHONIOENCODING", "PYTHONUNBUFFERED")
IMPORT_TIME_ENV = ("PSYCOPG_IMPL",)  # read by a library as it is imported: the server did
_HEADER = struct.Struct(">I")


class ProtocolError(Exception):
    """A frame that is not one: too long, not JSON, cut short."""


def socket_dir(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """$XDG_RUNTIME_DIR/envplane (a per-user tmpfs on systemd machines), else
    ~/.cache/envplane/run."""
    env = os.environ if environ is None else environ
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "envplane")
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(home, ".cache", "envplane", "run")


def socket_path(environ: dict[str, str] | os._Environ[str] | None = None) -> str:
    """One server per interpreter and installation: two virtualenvs never share one."""
    ident = f"{sys.executable}\0{PACKAGE}".encode("utf-8", "surrogateescape")
    name = f"warm-{hashlib.sha256(ident).hexdigest()[:12]}.sock"
    return os.path.join(socket_dir(environ), name)


def unsafe_dir(directory: StrPath) -> str | None:
    """Why `directory` must not hold this user's socket (None: it may). Anyone else who can
    write in it could put their own socket there and be handed our terminal."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return "it does not exist"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a directory"
    if st.st_uid != os.getuid():
        return f"it belongs to uid {st.st_uid}, not to this user (uid {os.getuid()})"
    if stat.S_IMODE(st.st_mode) != 0o700:
        return f"its mode is {stat.S_IMODE(st.st_mode):04o}, not 0700"
    return None


def too_long(path: StrPath) -> bool:
    return len(os.fsencode(path)) > MAX_SUN_PATH


def fingerprint() -> str:
    """What the server's imported code must match: Python, this interpreter, every source file
    of the package by path, size and mtime (an editable install changes in place), and each
    site-packages directory's mtime (installing or removing a package changes it)."""
    h = hashlib.sha256(f"{sys.version}\0{sys.executable}\0".encode())
    for site in sys.path:
        if site.endswith("site-packages"):
            try:  # noqa: SIM105
                h.update(f"{site}\0{os.stat(site).st_mtime_ns}\n".encode())
            except OSError:
                pass
    stack = [PACKAGE]
    rows: list[str] = []
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    st = entry.stat()
                    rows.append(f"{entry.path}\0{st.st_size}\0{st.st_mtime_ns}\n")
    for row in sorted(rows):
        h.update(row.encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def interpreter_settings(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The variables a running interpreter has already applied: PYTHONPATH, PYTHONHASHSEED,
    PYTHONWARNINGS..., and those libraries read as they are imported."""
    return {
        k: v
        for k, v in environ.items()
        if (k.startswith("PYTHON") and k not in _CHILD_HONOURS) or k in IMPORT_TIME_ENV
    }


def ignored_signals() -> list[int]:
    """The forwarded signals this process was started ignoring (`nohup` ignores SIGHUP; a
    shell's `&` without job control, SIGINT and SIGQUIT): a cold command would ignore them too,
    so the child must, whatever the server was started with."""
    return [int(s) for s in FORWARDED if signal.getsignal(s) == signal.SIG_IGN]


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"a frame of {len(body)} bytes is over {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


def send(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    frame = encode(message)
    if fds:  # the descriptors ride with the length prefix; the body follows
        sent = socket.send_fds(sock, [frame[: _HEADER.size]], fds)
        sock.sendall(frame[sent:])
    else:
        sock.sendall(frame)


def receive(sock: socket.socket, *, max_fds: int = 0) -> tuple[dict[str, Any], list[int]] | None:
    """The next frame and the descriptors that came with it; None at a clean end of stream.
    Received descriptors are closed again when the frame turns out to be bad."""
    fds: list[int] = []
    if max_fds:
        head, fds, flags, _addr = socket.recv_fds(sock, _HEADER.size, max_fds)
        if flags & socket.MSG_CTRUNC:
            _close(fds)
            raise ProtocolError("descriptors were cut short")
        if head and len(head) < _HEADER.size:
            head += _exactly(sock, _HEADER.size - len(head))
    else:
        head = _exactly(sock, _HEADER.size, eof_ok=True)
    if not head:
        _close(fds)
        return None
    try:
        (size,) = _HEADER.unpack(head)
        if size > MAX_FRAME:
            raise ProtocolError(f"a frame of {size} bytes is over {MAX_FRAME}")
        message = json.loads(_exactly(sock, size))
        if not isinstance(message, dict):
            raise ProtocolError("a frame is not a JSON object")
    except (ProtocolError, ValueError, OSError):
        _close(fds)
        raise
    return message, fds


def _exactly(sock: socket.socket, size: int, *, eof_ok: bool = False) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            if eof_ok and not chunks:
                return b""
            raise ProtocolError("the stream ended inside a frame")
        chunks += chunk
    return bytes(chunks)


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:  # noqa: SIM105 - contextlib is not imported here (see the module's docstring)
            os.close(fd)
        except OSError:
            pass


def connect(path: StrPath | None = None, *, timeout: float | None = None) -> socket.socket | None:
    """A connection to this user's server, or None: none runs, or the socket is not one this
    user can trust (its directory or its owner are not this user's alone)."""
    path = socket_path() if path is None else path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(os.fsencode(path))
        if peer_uid(sock) != os.getuid() or unsafe_dir(os.path.dirname(path)) is not None:
            sock.close()
            return None
    except (OSError, ValueError):
        sock.close()
        return None
    sock.settimeout(None)
    return sock


def request(message: dict[str, Any], path: StrPath | None = None) -> dict[str, Any] | None:
    """One control request (status, stop) and its answer; None when no server answers."""
    sock = connect(path, timeout=5)
    if sock is None:
        return None
    with sock:
        try:
            send(sock, message)
            got = receive(sock)
        except (OSError, ProtocolError):
            return None
    return None if got is None else got[0]


def run_warm(
    argv: list[str], *, path: StrPath | None = None, fingerprint_of: str | None = None
) -> int | None:
    """Run this command in a child of the warm server, with this process's stdin, stdout and
    stderr; its exit code, or None when it must run cold here (no server, a stale one)."""
    sock = connect(path)
    if sock is None:
        return None
    with sock:
        umask = os.umask(0)
        os.umask(umask)
        try:
            cwd = os.getcwd()
        except OSError:
            return None  # a directory removed under the caller: a child could not go there
        message = {
            "argv": argv,
            "cwd": cwd,
            "env": dict(os.environ),
            "umask": umask,
            "ignored": ignored_signals(),
            "fingerprint": fingerprint() if fingerprint_of is None else fingerprint_of,
        }
        try:
            send(sock, message, [0, 1, 2])
            got = receive(sock)
        except (OSError, ProtocolError):
            return None  # nothing ran yet: cold is still exact
        if got is None or not isinstance(got[0].get("pid"), int):
            return None  # stale, or an interpreter set up otherwise: cold
        return _follow(sock, got[0]["pid"])


def _follow(sock: socket.socket, pid: int) -> int:
    """Forward the signals a user sends this process to the child, until its exit code."""

    def forward(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in FORWARDED:
        if signal.getsignal(signum) != signal.SIG_IGN:  # what the caller ignores, the child does
            signal.signal(signum, forward)
    try:
        got = receive(sock)
    except (OSError, ProtocolError):
        got = None
    code = None if got is None else got[0].get("exit")
    if isinstance(code, int):
        return code
    print(
        "envplane: the command ended without an exit code (its process was killed)", file=sys.stderr
    )
    return 1


__all__ = ["connect", "fingerprint", "request", "run_warm", "socket_path", "unsafe_dir"]
