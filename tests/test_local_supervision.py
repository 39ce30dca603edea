"""Supervised services: restarted after SIGKILL, scaled without touching running replicas,
restarted one at a time on change, and supervisord outliving envplane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from envplane.errors import OperationFailed
from envplane.render.model import Resource
from tests import localkit as k

pytestmark = pytest.mark.slow


def test_sigkilled_service_is_restarted_by_supervisord() -> None:
    with k.local_env("kill-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.echo_service(env))
        port = env.ports["service/backend/0"]
        before = k.program_pid(env, "svc-backend-0")
        os.kill(before, signal.SIGKILL)

        def back() -> bool:
            try:
                return k.program_pid(env, "svc-backend-0") != before and k.call(port, "/")[0] == 200
            except (AssertionError, OSError):
                return False

        k.wait_for(back, timeout=10, what="the killed replica to be restarted and serving")
        assert env.target.observe(env.ctx, k.echo_service(env)).healthy


CHILD = """
import sys, time
sys.path.insert(0, {repo!r})
from tests import localkit as k
from envplane.targets.base import EnvContext
from envplane.targets.local import LocalTarget
ctx = EnvContext(name={name!r}, project="sunday", env_dir=__import__("pathlib").Path({env_dir!r}),
                 ports={{}}, secret=k.SECRETS.__getitem__, matrix_dir=k.EXAMPLE)
env = k.Env(ctx.env_dir.parent.parent, ctx, LocalTarget(), {ports!r})
env.target.apply(ctx, "create", k.supervisor())
env.target.apply(ctx, "create", k.echo_service(env))
print("ready", flush=True)
time.sleep(60)
"""


def test_environment_survives_envplane_being_killed() -> None:
    with k.local_env("survive-test") as env:
        code = CHILD.format(
            repo=str(k.REPO), name=env.ctx.name, env_dir=str(env.env_dir), ports=env.ports
        )
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        finally:
            child.kill()
            child.wait()
        assert k.call(env.ports["service/backend/0"], "/")[0] == 200
        assert env.target.observe(env.ctx, k.supervisor()).healthy
        pid = int((env.env_dir / "run" / "supervisord.pid").read_text())
        assert os.getsid(pid) == pid != os.getsid(0)  # its own session, not envplane's
        if os.geteuid() == 0:
            assert os.stat(f"/proc/{pid}").st_uid != 0  # dropped to the run user
            assert os.stat(env.env_dir).st_uid != 0


def test_scaling_keeps_running_replicas_and_changes_roll_one_at_a_time() -> None:
    with k.local_env("scale-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.echo_service(env, replicas=1))
        first = k.program_pid(env, "svc-backend-0")

        env.target.apply(env.ctx, "update", k.echo_service(env, replicas=2))
        assert k.program_pid(env, "svc-backend-0") == first  # untouched
        assert k.call(env.ports["service/backend/1"], "/")[1] == "replica=1 msg=hello"
        seen = env.target.observe(env.ctx, k.echo_service(env, replicas=2))
        assert seen.healthy and seen.info["ready"] == 2

        drift = env.target.observe(env.ctx, k.echo_service(env, replicas=2, msg="bye"))
        assert not drift.healthy and "another command or environment" in drift.detail
        env.target.apply(env.ctx, "update", k.echo_service(env, replicas=2, msg="bye"))
        pids = [k.program_pid(env, f"svc-backend-{i}") for i in range(2)]
        assert first not in pids
        for i in range(2):
            assert k.call(env.ports[f"service/backend/{i}"], "/")[1] == f"replica={i} msg=bye"
        assert any("replica 0 restarted" in m for m in env.progress)

        env.target.apply(env.ctx, "update", k.echo_service(env, replicas=1, msg="bye"))
        assert k.program_pid(env, "svc-backend-0") == pids[0]
        k.wait_for(lambda: not _accepts(env.ports["service/backend/1"]), what="replica 1 gone")
        assert not (env.env_dir / "etc" / "supervisor.d" / "svc-backend-1.conf").exists()


def _accepts(port: int) -> bool:
    from envplane.targets.local.procs import port_accepts

    return port_accepts(port)


def test_a_service_that_crashes_fails_fast_with_its_log() -> None:
    with k.local_env("crash-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        bad = k.echo_service(env)
        spec = dict(
            bad.spec,
            command=[
                *bad.spec["command"][:1],
                "-c",
                "import sys; print('boom: missing setting'); sys.exit(3)",
            ],
        )
        with pytest.raises(OperationFailed) as err:
            env.target.apply(env.ctx, "create", Resource("service", "backend", spec))
        assert "svc-backend-0" in str(err.value) and "boom: missing setting" in str(err.value)
        seen = env.target.observe(env.ctx, bad)
        assert not seen.healthy
