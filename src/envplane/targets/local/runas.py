"""Who the environment's processes run as, and whether that user can reach the files it needs.

As root, supervisord and every program run as an unprivileged user (ENVPLANE_RUN_USER,
default `nobody`): PostgreSQL refuses root, and a compromised app should not own the machine.
Otherwise everything runs as the current user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envplane.errors import BadInput

DEFAULT_RUN_USER = "nobody"


@dataclass(frozen=True)
class RunUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]
    switch: bool  # True when we are root and must drop to this user to start programs

    def popen_kwargs(self) -> dict[str, Any]:
        """Arguments for subprocess.Popen/run that start a child as this user."""
        if not self.switch:
            return {}
        return {
            "user": self.uid,
            "group": self.gid,
            "extra_groups": sorted(self.groups - {self.gid}),
        }

    @staticmethod
    def tied(argv: list[str]) -> list[str]:
        """argv for a short-lived helper (initdb, …) that must die with envplane.

        A SIGKILLed envplane would otherwise leave it running, unsupervised, inside an
        environment that destroy then finds not empty. `setpriv --pdeathsig` (util-linux)
        sets the parent-death signal after the switch to the run user, which would clear it.
        """
        setpriv = shutil.which("setpriv")
        return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv

    def own(self, path: Path) -> None:
        """Give one path to the run user (a no-op when we already are that user)."""
        if self.switch:
            os.lchown(path, self.uid, self.gid)

    def own_tree(self, root: Path) -> None:
        if not self.switch:
            return
        self.own(root)
        for base, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                os.lchown(os.path.join(base, name), self.uid, self.gid)


def run_user() -> RunUser:
    if os.geteuid() != 0:
        uid = os.getuid()
        gid = os.getgid()
        return RunUser(
            pwd.getpwuid(uid).pw_name, uid, gid, frozenset(os.getgroups()) | {gid}, False
        )
    name = os.environ.get("ENVPLANE_RUN_USER") or DEFAULT_RUN_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BadInput(
            f"ENVPLANE_RUN_USER={name!r}: no such user on this machine",
            hint="set ENVPLANE_RUN_USER to an existing unprivileged user (e.g. nobody)",
        ) from None
    if entry.pw_uid == 0:
        raise BadInput(
            f"ENVPLANE_RUN_USER={name!r} is root; PostgreSQL and the app must run unprivileged",
            hint="set ENVPLANE_RUN_USER to an unprivileged user (default: nobody)",
        )
    groups = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem} | {entry.pw_gid}
    return RunUser(name, entry.pw_uid, entry.pw_gid, frozenset(groups), True)


def _can(user: RunUser, st: os.stat_result, bits: tuple[int, int, int]) -> bool:
    if user.uid == 0:
        return True
    if st.st_uid == user.uid:
        return bool(st.st_mode & bits[0])
    if st.st_gid in user.groups:
        return bool(st.st_mode & bits[1])
    return bool(st.st_mode & bits[2])


def blocking_dir(user: RunUser, path: Path) -> Path | None:
    """The first directory on the way to `path` that `user` cannot traverse, if any."""
    current = Path("/")
    parts = Path(os.path.abspath(path)).parts[1:]
    for part in (None, *parts):
        if part is not None:
            current = current / part
            if current.is_symlink():
                target = current.resolve()
                hidden = blocking_dir(user, target)
                if hidden is not None:
                    return hidden
                current = target
        try:
            st = current.stat()
        except FileNotFoundError:
            return None  # the rest will be created by us, owned by the user
        if stat.S_ISDIR(st.st_mode) and not _can(
            user, st, (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
        ):
            return current
    return None


def first_unreachable(
    user: RunUser, paths: Iterable[tuple[Path, str]]
) -> tuple[Path, Path, str] | None:
    """(the blocking directory, the path, what it is for) of the first path `user` cannot
    reach, or None."""
    for path, why in paths:
        blocked = blocking_dir(user, path)
        if blocked is not None:
            return blocked, path, why
    return None


def unreachable_error(user: RunUser, blocked: Path, path: Path, why: str) -> BadInput:
    return BadInput(
        f"directory {blocked} is not traversable by user {user.name!r}, "
        f"who must reach {path} ({why})",
        hint=(
            f"run `chmod o+x {blocked}` (traverse only, no listing), or put it somewhere "
            f"{user.name!r} can reach, or set ENVPLANE_RUN_USER to a user who can"
        ),
    )


def check_reachable(user: RunUser, paths: Iterable[tuple[Path, str]]) -> None:
    """Raise one clear error for the first path (with what it is for) the user cannot reach."""
    found = first_unreachable(user, paths)
    if found is not None:
        raise unreachable_error(user, *found)


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its closest existing ancestor (what creating it
    needs to be writable)."""
    current = Path(os.path.abspath(path))
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
