"""Remove a whole local environment: supervisord, anything it left running, the directory,
and (as root) the environment's own system user."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from envplane.errors import OperationFailed
from envplane.targets.local import procs, runas, supd
from envplane.targets.local.envctx import LocalEnv

KILL_WAIT = 5.0


def _stragglers(env: LocalEnv) -> list[int]:
    """Processes started for this environment (they carry its marker) that outlived supervisord,
    and, as root, any process of the environment's own user (one that cleared its environment
    is still the environment's). A user's shell or editor that merely works inside env_dir is
    never killed, only reported."""
    found = set(procs.processes_marked(supd.MARKER, str(env.layout.env_dir)))
    user = runas.environment_user(env.ctx.name, env.layout.env_dir)
    if user is not None:
        found.update(procs.processes_of_uid(user.uid))
    return sorted(found)


def destroy_all(env: LocalEnv) -> None:
    """Idempotent; fine when nothing exists."""
    layout = env.layout
    supd.stop(layout)
    for sig, wait in ((signal.SIGTERM, KILL_WAIT), (signal.SIGKILL, 1.0)):
        pids = _stragglers(env)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids and any(procs.alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
    shutil.rmtree(layout.env_dir, ignore_errors=True)
    # Copies staged for it by an interrupted clone or restore sit beside its directory.
    for what in layout.STAGED:
        staged = layout.staged(what)
        if staged.is_dir():
            shutil.rmtree(staged, ignore_errors=True)
        else:
            staged.unlink(missing_ok=True)
    if layout.env_dir.exists():
        raise OperationFailed(
            f"could not remove {layout.env_dir}",
            hint="check what still uses it (`envplane destroy` lists leftovers), then remove it",
        )
    # Last, once nothing runs as it and it owns nothing: the user. If userdel refuses, the
    # user is a leftover the verified destroy lists (and a resume removes it again).
    failed = runas.remove_environment_user(env.ctx.name, layout.env_dir)
    if failed is not None:
        env.ctx.progress(f"the environment's system user was not removed: {failed}")
