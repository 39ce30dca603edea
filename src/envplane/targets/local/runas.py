"""Who the environment's processes run as, and whether that user can reach the files it needs.

As root, supervisord and every program of an environment run as a system user of that
environment's own, `envplane-<env>` (PostgreSQL refuses root, a compromised app should not own
the machine, and one environment's app must not read another's secrets): made by its first
resource's create, removed by its destroy. ENVPLANE_RUN_USER pins one user for every
environment instead (the shared behaviour of old, for those who ask for it). As an ordinary user
nothing switches: every environment runs as that user.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envplane.errors import BadInput, OperationFailed, ToolMissing

DEFAULT_RUN_USER = "nobody"
USER_PREFIX = "envplane-"
MAX_USER_NAME = 32  # what utmp, ps and Debian's useradd take
# The comment (GECOS) field of every user envplane makes: `envplane environment <env> <dir>`.
# Only a user carrying it is reused or removed; the directory tells the environments of the same
# name under two ENVPLANE_HOMEs apart.
MARK = "envplane environment"
NOLOGIN = "/usr/sbin/nologin"
ATTEMPTS = 6  # useradd/userdel give up at once while another one holds /etc/passwd's lock


@dataclass(frozen=True)
class RunUser:
    name: str
    uid: int
    gid: int
    groups: frozenset[int]
    switch: bool  # True when we are root and must drop to this user to start programs
    # False: an environment's own user, not made yet (what `check` judges reachability for,
    # by the bits every other user has); nothing may be started as it or given to it.
    exists: bool = True

    def _made(self) -> None:
        if not self.exists:
            raise RuntimeError(f"user {self.name} does not exist yet")

    def popen_kwargs(self) -> dict[str, Any]:
        """Arguments for subprocess.Popen/run that start a child as this user."""
        if not self.switch:
            return {}
        self._made()
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
            self._made()
            os.lchown(path, self.uid, self.gid)

    def own_tree(self, root: Path) -> None:
        if not self.switch:
            return
        self.own(root)
        for base, dirs, files in os.walk(root):
            for name in (*dirs, *files):
                os.lchown(os.path.join(base, name), self.uid, self.gid)


def per_environment() -> bool:
    """Whether each environment runs as a user of its own: as root, unless ENVPLANE_RUN_USER
    pins one user for all of them."""
    return os.geteuid() == 0 and not os.environ.get("ENVPLANE_RUN_USER")


def run_user(
    env: str | None = None, env_dir: Path | None = None, *, create: bool = False
) -> RunUser:
    """Who environment `env` (in `env_dir`) runs as. As root (ENVPLANE_RUN_USER unset), its own
    user: made now with `create`, else a not-yet-made one (`exists` False) if there is none.
    Otherwise, and without an environment, the shared user (`shared_user`). An environment
    keeps the user it was made with: its own (pinned or not), or the one of its directory."""
    if env is None or env_dir is None or os.geteuid() != 0:
        return shared_user()
    found = _lookup(env, env_dir, strict=per_environment())
    if found is not None:
        return found
    if not per_environment():
        return shared_user()
    found = _made_before(env_dir)
    if found is not None:
        return found
    if create:
        return _create(env, env_dir)
    return RunUser(_candidates(env, env_dir)[0], -1, -1, frozenset(), True, exists=False)


def _made_before(env_dir: Path) -> RunUser | None:
    """The user of an environment made before environments had users of their own (its
    directory is that user's, `nobody` as a rule): it keeps running as that user until it is
    destroyed and created again. Giving its directory to a new user under its running
    supervisord would lock that supervisord out of it."""
    try:
        owner = pwd.getpwuid(os.stat(env_dir).st_uid)
    except (OSError, KeyError):
        return None
    if owner.pw_uid == 0 or owner.pw_gecos.startswith(MARK + " "):
        return None  # being made now (root's until `Layout.ensure`), or a user of envplane's
    return _with_groups(owner)


def shared_user() -> RunUser:
    """The current user; as root ENVPLANE_RUN_USER (default `nobody`). Every environment's
    user when one is pinned; the builder of the template cluster as root."""
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
    return _with_groups(entry)


def _with_groups(entry: pwd.struct_passwd) -> RunUser:
    name = entry.pw_name
    groups = {g.gr_gid for g in grp.getgrall() if name in g.gr_mem} | {entry.pw_gid}
    return RunUser(name, entry.pw_uid, entry.pw_gid, frozenset(groups), True)


# --- the environments' own users -----------------------------------------------------------


def environment_user_name(env: str) -> str:
    """`envplane-<env>`; a name longer than 32 characters keeps a prefix and a stable hash."""
    return _candidates(env, None)[0]


def marker(env: str, env_dir: Path) -> str:
    return f"{MARK} {env} {os.path.abspath(env_dir)}"


def _hashed(env: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    room = MAX_USER_NAME - len(USER_PREFIX) - 1 - len(digest)
    return f"{USER_PREFIX}{env[:room].rstrip('-')}-{digest}"


def _candidates(env: str, env_dir: Path | None) -> list[str]:
    """The names the environment's user may have: `envplane-<env>` (hashed when too long),
    then one of its directory (the first held by the same environment name of another home)."""
    first = USER_PREFIX + env
    if len(first) > MAX_USER_NAME:
        first = _hashed(env, env)
    if env_dir is None:
        return [first]
    return [first, _hashed(env, os.path.abspath(env_dir))]


def _of(entry: pwd.struct_passwd) -> RunUser:
    return RunUser(entry.pw_name, entry.pw_uid, entry.pw_gid, frozenset({entry.pw_gid}), True)


def _lookup(env: str, env_dir: Path, *, strict: bool) -> RunUser | None:
    """The user made for this environment, if it exists. With `strict`, a name it would take
    held by a user envplane did not make (no marker in its comment) is a BadInput."""
    mark = marker(env, env_dir)
    for name in _candidates(env, env_dir):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_gecos == mark and entry.pw_uid != 0:
            return _of(entry)
        if strict and not entry.pw_gecos.startswith(MARK + " "):
            raise BadInput(
                f"environment {env!r} would run as system user {name!r}, which exists but was "
                f"not made by envplane (its comment is {entry.pw_gecos!r}, not {mark!r})",
                hint=f"remove or rename that user (`userdel {name}`), or set ENVPLANE_RUN_USER "
                "to run every environment as one user you choose",
            )
    return None


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise ToolMissing(
            f"`{name}` not found: as root, envplane gives each environment a system user",
            hint="install it (`apt-get install passwd`, or `make system`), or set "
            "ENVPLANE_RUN_USER to run every environment as one existing user",
        )
    return found


def _run_tool(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """useradd/userdel, retried while another holds the lock of /etc/passwd."""
    for attempt in range(ATTEMPTS):
        proc = subprocess.run(
            argv, capture_output=True, text=True, check=False, cwd="/", stdin=subprocess.DEVNULL
        )
        if proc.returncode == 0 or "lock" not in proc.stderr:
            return proc
        time.sleep(0.05 * (attempt + 1))
    return proc


_CREATING = threading.Lock()  # the create steps of one environment run in parallel threads


def _create(env: str, env_dir: Path) -> RunUser:
    """useradd the environment's user (and its group); a racing create of the same environment
    in another process is fine: its user is the one found."""
    mark = marker(env, env_dir)
    with _CREATING:
        errors = []
        for name in _candidates(env, env_dir):
            found = _lookup(env, env_dir, strict=True)
            if found is not None:
                return found
            if _exists(name):
                errors.append(f"{name}: held by another environment")
                continue  # the same name under another ENVPLANE_HOME: the next candidate
            argv = [_tool("useradd"), "--system", "--no-create-home", "--home-dir", "/nonexistent"]
            argv += ["--shell", NOLOGIN, "--user-group", "--comment", mark, "--", name]
            proc = _run_tool(argv)
            if proc.returncode != 0:
                errors.append(f"{name}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
        found = _lookup(env, env_dir, strict=True)
        if found is not None:
            return found
    raise OperationFailed(
        f"could not make a system user for environment {env!r}: " + "; ".join(errors),
        hint="or set ENVPLANE_RUN_USER to run every environment as one existing user",
    )


def environment_user(env: str, env_dir: Path) -> RunUser | None:
    """The user made for this environment, if it still exists (never one envplane did not
    make): what teardown removes and `leftovers` lists, pinned ENVPLANE_RUN_USER or not."""
    if os.geteuid() != 0:
        return None
    return _lookup(env, env_dir, strict=False)


def remove_environment_user(env: str, env_dir: Path) -> str | None:
    """userdel the environment's user and its group, once nothing runs as it any more. What
    userdel said when it refused (the user is then a leftover `environment_user_leftovers`
    lists), or None; nothing to remove is fine."""
    user = environment_user(env, env_dir)
    if user is None:
        return None
    proc = _run_tool([_tool("userdel"), "--", user.name])
    if proc.returncode != 0:
        return f"userdel {user.name}: {proc.stderr.strip() or f'exit {proc.returncode}'}"
    group = _group(user.name)
    if group is not None and group.gr_gid == user.gid:  # userdel keeps it without USERGROUPS_ENAB
        proc = _run_tool([_tool("groupdel"), "--", user.name])
        if proc.returncode != 0:  # its user gone, nothing else would name it: say it now
            raise OperationFailed(
                f"could not remove group {user.name} of environment {env!r}: "
                f"{proc.stderr.strip() or f'exit {proc.returncode}'}",
                hint=f"remove it (`groupdel {user.name}`), then resume the destroy",
            )
    return None


def _exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group(name: str) -> grp.struct_group | None:
    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


def environment_user_leftovers(env: str, env_dir: Path) -> list[str]:
    """The environment's user and group, one line each, if they still exist."""
    user = environment_user(env, env_dir)
    if user is None:
        return []
    lines = [f"system user {user.name} (uid {user.uid}) still exists"]
    group = _group(user.name)
    if group is not None and group.gr_gid == user.gid:
        lines.append(f"group {user.name} (gid {user.gid}) still exists")
    return lines


# --- reachability ----------------------------------------------------------------------------


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
    if not user.exists:
        # An environment's own user, not made yet: only what every other user may do counts
        # (the same words for every environment, so `check` says it once).
        who, where = "other users (as root each environment runs as a user of its own)", "they"
    else:
        who, where = f"user {user.name!r}", repr(user.name)
    return BadInput(
        f"directory {blocked} is not traversable by {who}, who must reach {path} ({why})",
        hint=(
            f"run `chmod o+x {blocked}` (traverse only, no listing), or put it somewhere "
            f"{where} can reach, or set ENVPLANE_RUN_USER to a user who can"
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
