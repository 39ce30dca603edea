"""What a local environment really uses: its supervisor's process tree read from /proc, and
the blocks its directory holds. Read-only; nothing is signalled or started."""

from __future__ import annotations

import os
from pathlib import Path

from envplane.targets.base import Usage
from envplane.targets.local import supd
from envplane.targets.local.layout import Layout
from envplane.targets.local.procs import all_pids

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, utime + stime in ticks, resident pages) of a live process, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
        with open(f"/proc/{pid}/statm", "rb") as handle:
            resident = int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    # fields[0] is the state (field 3 of proc(5)): ppid is 4, utime 14, stime 15.
    return int(fields[1]), int(fields[11]) + int(fields[12]), resident


def _tree(root: int) -> list[tuple[int, int, int]]:
    stats = {pid: st for pid in all_pids() if (st := _stat(pid)) is not None}
    kids: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in stats.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            out.append(stats[pid])
            todo.extend(kids.get(pid, []))
    return out


def disk_bytes(root: Path) -> int:
    """Blocks allocated under `root`, symlinks not followed; unreadable parts are skipped."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda _e: None):
        for name in filenames + dirnames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
            except OSError:
                continue
    return total


def measure(layout: Layout) -> Usage:
    pid = supd.daemon_pid(layout)
    tree = _tree(pid) if pid is not None else []
    return Usage(
        processes=len(tree),
        cpu_seconds=sum(t for _, t, _ in tree) / _TICKS,
        rss_bytes=sum(r for _, _, r in tree) * _PAGE,
        disk_bytes=disk_bytes(layout.env_dir) if layout.env_dir.is_dir() else 0,
    )
