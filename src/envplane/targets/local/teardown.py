"""Remove a whole local environment: supervisord, anything it left running, the directory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time

from envplane.errors import OperationFailed
from envplane.targets.local import procs, supd
from envplane.targets.local.envctx import LocalEnv

KILL_WAIT = 5.0


def _stragglers(env: LocalEnv) -> list[int]:
    """Processes started for this environment (they carry its marker) that outlived supervisord.
    A user's shell or editor that merely works inside env_dir is never killed, only reported."""
    return procs.processes_marked(supd.MARKER, str(env.layout.env_dir))


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
