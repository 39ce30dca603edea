"""Facts from /proc and the loopback interface: which processes belong to a directory, which
ports answer. Used for readiness, clear port-conflict errors and the post-destroy leftover check."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from envplane.targets.local import sockdiag

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str

    def describe(self) -> str:
        command = " ".join(self.cmdline.split()) or "?"  # one line, whatever the argv held
        return f"pid {self.pid} ({command[:160]})"


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


def uid_of(pid: int) -> int | None:
    """The real uid of a process (None once it is gone)."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(b"Uid:"):
            return int(line.split()[1])
    return None


def processes_of_uid(uid: int) -> list[int]:
    """Every live process running as `uid` (real uid), but this one."""
    me = os.getpid()
    return [p for p in all_pids() if p != me and uid_of(p) == uid and alive(p)]


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


# Local addresses (as /proc/net/tcp{,6} print them) whose listener keeps 127.0.0.1:PORT from
# being bound: the loopback address itself and the wildcards, IPv4-mapped included.
_BLOCKING_ADDRESSES = {
    "0100007F",  # 127.0.0.1
    "00000000",  # 0.0.0.0
    "0" * 32,  # ::
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
    "0000000000000000FFFF000000000000",  # ::ffff:0.0.0.0
}


# The same addresses as sock_diag gives them (network order).
_BLOCKING_RAW = {
    bytes([127, 0, 0, 1]),
    bytes(4),
    bytes(16),
    bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1]),
    bytes(10) + b"\xff\xff" + bytes(4),
}


def listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on `port` at an address that 127.0.0.1:`port` clashes
    with (a listener on 127.0.0.2 does not count). Asked of the kernel's sock_diag, which
    lists only listening sockets; /proc/net/tcp, which lists all of them (thousands in
    TIME_WAIT on a busy machine: 15-20 ms a read), where that is not available."""
    listeners = sockdiag.listening()
    if listeners is not None:
        return {str(s.inode) for s in listeners if s.port == port and s.address in _BLOCKING_RAW}
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(table).decode().splitlines()[1:]:
            parts = line.split()
            if len(parts) <= 9 or parts[3] != "0A":  # LISTEN
                continue
            address, _sep, port_hex = parts[1].rpartition(":")
            if int(port_hex, 16) == port and address.upper() in _BLOCKING_ADDRESSES:
                inodes.add(parts[9])
    return inodes


def socket_holders(inodes: set[str], pids: Iterable[int]) -> list[int]:
    """Those of `pids` with one of the sockets `inodes` open (processes whose descriptors this
    user may not read are not seen)."""
    wanted = {f"socket:[{i}]" for i in inodes}
    found: list[int] = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in wanted:
                        found.append(pid)
                        break
    return found


def _ppid(pid: int) -> int | None:
    raw = _read(f"/proc/{pid}/stat")
    if not raw:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def process_tree(root: int) -> set[int]:
    """`root` and every process descended from it (one pass over /proc)."""
    kids: dict[int, list[int]] = {}
    for pid in all_pids():
        parent = _ppid(pid)
        if parent is not None:
            kids.setdefault(parent, []).append(pid)
    tree, todo = {root}, [root]
    while todo:
        for child in kids.get(todo.pop(), ()):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    return tree


def port_owner(port: int) -> Proc | None:
    """The process listening on the port, when /proc lets us see it."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    for pid in socket_holders(inodes, all_pids()):
        info = proc_info(pid)
        if info is not None:
            return info
    return None


def _tail(path: Path, limit: int) -> str | None:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            text = handle.read().decode(errors="replace")
    except OSError:
        return None
    return text.partition("\n")[2] if size > limit else text


def log_tail(path: Path, limit: int = 1500) -> str:
    """The last lines of a log file, for error messages."""
    text = _tail(path, limit)
    if text is None:
        return "(no log)"
    return text.strip() or "(log is empty)"


def log_lines(path: Path, count: int | None = 5, limit: int = 4000) -> list[str]:
    """The last `count` (None: all) non-empty lines of the last `limit` bytes of a log file;
    [] when it cannot be read."""
    lines = [line.strip() for line in (_tail(path, limit) or "").splitlines() if line.strip()]
    return lines if count is None else lines[-count:]
