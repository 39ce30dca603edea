"""Orphans under ENVPLANE_HOME: what no recorded environment owns.

- a directory under `environments/` whose name is no recorded (not destroyed) environment;
- a process that belongs to such a directory: started from it (its cwd, executable, command
  line or environment points inside it) or carrying its ENVPLANE_ENV_DIR marker after the
  directory itself is gone;
- the ports such a process still listens on;
- on every target that can say (an `OrphanTarget`: the cloud one), what it made labelled as
  envplane's for such a name: namespaces and their Helm releases, Terraform working
  directories (targets/cloud/orphans.py). Those go first; the directory stays while anything
  of them could not be removed (it may hold the only Terraform state of cloud resources).

Everything owned by a live environment is left alone: the set of live environments is read
from the store again right before anything is removed. Staged copies (`.NAME.*`, made by a
running clone or restore beside its environment's directory) are not orphans here; the
destroy of their environment removes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envplane.errors import EnvplaneError
from envplane.names import ENV_NAME_RE
from envplane.state.records import EnvironmentRecord
from envplane.targets.base import Orphaned, OrphanTarget
from envplane.targets.local import procs, runas
from envplane.targets.local.supd import MARKER
from envplane.targets.registry import TARGETS
from envplane.workspace import Workspace

KILL_WAIT = 5.0


@dataclass
class Orphan:
    name: str  # the directory's name under environments/
    directory: Path
    exists: bool
    processes: list[procs.Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    elsewhere: list[tuple[str, Orphaned]] = field(default_factory=list)  # (target, thing)

    def lines(self) -> list[str]:
        out = [f"directory {self.directory}"] if self.exists else []
        out += [f"process {p.describe()}" for p in self.processes]
        out += [f"port {port} listening" for port in self.ports]
        out += [f"{target}: {o.description}" for target, o in self.elsewhere]
        return out


def _live(records: Sequence[EnvironmentRecord]) -> set[str]:
    return {r.name for r in records if r.status != "destroyed"}


def _listening_ports() -> dict[str, int]:
    """socket inode -> port, for every TCP socket listening on this machine."""
    out: dict[str, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if len(parts) > 9 and parts[3] == "0A":
                    out[parts[9]] = int(parts[1].rpartition(":")[2], 16)
    return out


def _ports_of(pid: int, listening: dict[str, int]) -> list[int]:
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in listening:
                    found.add(listening[link[8:-1]])
    return sorted(found)


def _candidates(pid: int, needle: bytes) -> Iterator[str]:
    """What may name the directory process `pid` belongs to, in the order it is judged: its
    cwd, its executable, its ENVPLANE_ENV_DIR marker, its command line. Read one after the
    other, only as far as needed; the environment and the command line, the larger two, are
    decoded only when they hold `needle` (the root's path) at all."""
    for link in ("cwd", "exe"):
        with contextlib.suppress(OSError):
            yield os.readlink(f"/proc/{pid}/{link}")
    marker = MARKER.encode() + b"="
    with contextlib.suppress(OSError):
        raw = _read(f"/proc/{pid}/environ")
        if needle in raw:
            for e in raw.split(b"\0"):
                if e.startswith(marker):
                    yield e.decode(errors="replace").partition("=")[2]
    with contextlib.suppress(OSError):
        raw = _read(f"/proc/{pid}/cmdline")
        if needle in raw:
            yield from (a.decode(errors="replace") for a in raw.split(b"\0"))


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _owner_dir(pid: int, root: str) -> str | None:
    """The directory directly under `root` that process `pid` belongs to, if any."""
    for value in _candidates(pid, os.fsencode(root) + b"/"):
        at = value.find(root + "/")
        if at < 0:
            continue
        name = value[at + len(root) + 1 :].split("/", 1)[0]
        if name and not name.startswith("."):
            return name
    return None


def find_orphans(ws: Workspace, records: Sequence[EnvironmentRecord] | None = None) -> list[Orphan]:
    """`records`: every environment of the store, destroyed ones included, as the caller just
    read them (read here when not given)."""
    if records is None:
        records = ws.store.list_environments(include_destroyed=True)
    root = ws.settings.environments_dir
    live = _live(records)
    found: dict[str, Orphan] = {}
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and not entry.name.startswith(".") and entry.name not in live:
                found[entry.name] = Orphan(entry.name, entry, True)
    base = os.path.abspath(root)
    me = os.getpid()
    listening: dict[str, int] | None = None  # read for the first orphan process only
    for pid in procs.all_pids():
        if pid == me:
            continue
        name = _owner_dir(pid, base)
        if name is None or name in live:
            continue
        info = procs.proc_info(pid)
        if info is None:
            continue
        orphan = found.setdefault(name, Orphan(name, root / name, (root / name).is_dir()))
        orphan.processes.append(info)
        if listening is None:
            listening = _listening_ports()
        orphan.ports += _ports_of(pid, listening)
    for target, thing in _elsewhere(ws, live, records):
        orphan = found.setdefault(
            thing.environment,
            Orphan(
                thing.environment, root / thing.environment, (root / thing.environment).is_dir()
            ),
        )
        orphan.elsewhere.append((target, thing))
    return [found[n] for n in sorted(found)]


def _clusters(ws: Workspace) -> list[tuple[str, str]]:
    """(name, region) of every cluster the matrix names: where cloud namespaces may be."""
    try:
        envs = ws.matrix.spec.environments.values()
    except EnvplaneError:
        return []  # a broken matrix: the clusters are unknown, the machine is still searched
    return sorted({(c.name, c.region) for env in envs for c in env.clusters})


def _orphan_targets(
    ws: Workspace, records: Sequence[EnvironmentRecord]
) -> list[tuple[str, OrphanTarget]]:
    """The targets that can list their orphans, among those an environment was ever recorded
    on (destroyed ones included): a machine that never made a cloud environment is not made
    to ask a cloud for credentials on every gc pass."""
    used = {r.target or "local" for r in records}
    out: list[tuple[str, OrphanTarget]] = []
    for name in TARGETS:
        if name not in used:
            continue
        target = ws.target(name)
        if isinstance(target, OrphanTarget):
            out.append((name, target))
    return out


def _elsewhere(
    ws: Workspace, live: set[str], records: Sequence[EnvironmentRecord]
) -> list[tuple[str, Orphaned]]:
    targets = _orphan_targets(ws, records)
    if not targets:
        return []  # the matrix's clusters are read only for a target that has some
    home, clusters = ws.settings.home, _clusters(ws)
    found: list[tuple[str, Orphaned]] = []
    for name, target in targets:
        found += [(name, o) for o in target.orphans(home, live, clusters)]
    return found


def remove_orphan(ws: Workspace, orphan: Orphan) -> list[str]:
    """Stop its processes, remove its directory (and, as root, the system user made for that
    name); what could not be removed. Refused for a name that is live now."""
    records = ws.store.list_environments()  # read again right before anything is removed
    if orphan.name in _live(records):
        return [f"{orphan.name} is a recorded environment now: left alone"]
    if orphan.elsewhere:
        targets = dict(_orphan_targets(ws, records))
        home, clusters = ws.settings.home, _clusters(ws)
        left = [
            line
            for target, thing in orphan.elsewhere
            for line in targets[target].remove_orphan(thing, home, clusters)
        ]
        if left:
            return left  # the directory and processes stay until the rest can go
    pids = [p.pid for p in orphan.processes]
    for sig, wait in ((signal.SIGTERM, KILL_WAIT), (signal.SIGKILL, 1.0)):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while any(procs.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
    left = [f"process {p} still running" for p in pids if procs.alive(p)]
    shutil.rmtree(orphan.directory, ignore_errors=True)
    if orphan.directory.exists():
        left.append(f"could not remove {orphan.directory}")
    if ENV_NAME_RE.fullmatch(orphan.name):
        failed = runas.remove_environment_user(orphan.name, orphan.directory)
        if failed is not None:
            left.append(f"system user of {orphan.name} not removed: {failed}")
    return left
