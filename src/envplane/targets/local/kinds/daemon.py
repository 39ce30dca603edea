"""Kind "supervisor": the environment's directory tree and its supervisord."""

from __future__ import annotations

from pathlib import Path

from envplane.render.model import Resource
from envplane.targets.base import Action, Observed
from envplane.targets.local import supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write
from envplane.targets.local.runas import check_reachable

LAUNCHER_SOURCE = Path(__file__).resolve().parent.parent / "launch.py"


def observe(env: LocalEnv, res: Resource) -> Observed:
    if not supd.answering(env.layout):
        return Observed(False, False, "supervisord is not running")
    return Observed(True, True, info={"pid": supd.daemon_pid(env.layout)})


def apply(env: LocalEnv, action: Action, res: Resource) -> None:
    # Judged before the environment's user is made: a refused create leaves no user behind.
    check_reachable(env.planned_user(), supd.reachable_paths(env.layout))
    env.layout.ensure(env.user)
    with env.lock():  # two threads must not both start a supervisord
        launcher = LAUNCHER_SOURCE.read_text(encoding="utf-8")
        atomic_write(env.layout.launcher, launcher, mode=0o644, user=env.user)
        supd.start(env.layout, env.user, env.ctx.name)


def delete(env: LocalEnv, res: Resource) -> None:
    supd.stop(env.layout)
