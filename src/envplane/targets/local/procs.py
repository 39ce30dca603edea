"""Facts from /proc and the loopback interface: which processes belong to a directory, which
ports answer. Used for readiness, clear port-conflict errors and the post-destroy leftover check."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str

    def describe(self) -> str:
        return f"pid {self.pid} ({self.cmdline[:120]})"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def proc_info(pid: int) -> Proc | None:
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    # The command name may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None  # a zombie has exited; only its parent's wait() is missing
    cmdline = _read(f"/proc/{pid}/cmdline").replace(b"\0", b" ").strip()
    return Proc(pid, int(fields[1]), cmdline.decode(errors="replace"))


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def alive(pid: int) -> bool:
    return proc_info(pid) is not None


def children(pid: int) -> list[int]:
    return [p for p in all_pids() if (info := proc_info(p)) is not None and info.ppid == pid]


def _inside(value: str, root: str) -> bool:
    return value == root or value.startswith(root + "/")


def processes_inside(root: Path) -> list[Proc]:
    """Processes whose cwd, executable, command line or environment points inside `root`."""
    base = os.path.abspath(root)
    me = os.getpid()
    found: list[Proc] = []
    for pid in all_pids():
        if pid == me:
            continue
        info = proc_info(pid)
        if info is None:
            continue
        with contextlib.suppress(OSError):
            if _inside(os.readlink(f"/proc/{pid}/cwd"), base):
                found.append(info)
                continue
        args = _read(f"/proc/{pid}/cmdline").split(b"\0")
        environ = _read(f"/proc/{pid}/environ").split(b"\0")
        values = [a.decode(errors="replace") for a in args]
        values += [e.decode(errors="replace").partition("=")[2] for e in environ]
        if any(_inside(v, base) or base + "/" in v for v in values if v):
            found.append(info)
    return found


def processes_marked(name: str, value: str) -> list[int]:
    """Processes whose environment has exactly `name=value` (inherited by their children)."""
    wanted = f"{name}={value}".encode()
    me = os.getpid()
    return [p for p in all_pids() if p != me and wanted in _read(f"/proc/{p}/environ").split(b"\0")]


def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def port_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether we could listen on the port now (a socket in TIME_WAIT does not count as taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(table).decode().splitlines()[1:]:
            parts = line.split()
            if len(parts) > 9 and parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    return inodes


def port_owner(port: int) -> Proc | None:
    """The process listening on the port, when /proc lets us see it."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    wanted = {f"socket:[{i}]" for i in inodes}
    for pid in all_pids():
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        return proc_info(pid)
    return None


def log_tail(path: Path, limit: int = 1500) -> str:
    """The last lines of a log file, for error messages."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    if size > limit:
        text = text.partition("\n")[2]
    return text.strip() or "(log is empty)"
