"""Who this process is, and whether another process on this host still lives."""

from __future__ import annotations

import os
import pwd
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Me:
    pid: int
    host: str
    user: str
    start: int | None


def me() -> Me:
    pid = os.getpid()
    return Me(pid=pid, host=socket.gethostname(), user=os_user(), start=start_ticks(pid))


def os_user() -> str:
    """The OS account this process runs as, by its uid: not $USER or $LOGNAME, which anyone
    can set (approvals rely on who this is: four-eyes)."""
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # no passwd entry, e.g. a bare container uid
        return f"uid-{os.geteuid()}"


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """When the process started, in clock ticks since boot; None where /proc is missing."""
    fields = _stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return int(fields[19])  # field 22 of proc(5)


def is_alive(pid: int, start: int | None) -> bool:
    """True if `pid` runs on this host and is the same process that started at `start`."""
    if pid <= 0:  # kill(0 or -n) would signal whole process groups
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: kill() is all we can know
    if fields[0] in ("Z", "X"):  # a zombie holds no lock, it only waits to be reaped
        return False
    return start is None or start_ticks(pid) == start
