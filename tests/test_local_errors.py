"""Bad inputs and messes: taken ports, unreachable directories, orphans found after destroy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from envplane.errors import BadInput, EnvplaneError
from envplane.render.model import Resource
from envplane.targets.base import EnvContext
from envplane.targets.local import LocalTarget
from envplane.targets.local.procs import port_accepts
from tests import localkit as k

pytestmark = pytest.mark.slow


def test_port_taken_by_someone_else_is_a_clear_error() -> None:
    with k.local_env("port-taken") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", env.ports["redis"]))
        squatter.listen()
        try:
            with pytest.raises(EnvplaneError) as err:
                env.target.apply(env.ctx, "create", k.redis(env))
        finally:
            squatter.close()
        message = str(err.value)
        assert f"port {env.ports['redis']}" in message and "already in use" in message
        assert f"pid {os.getpid()}" in message  # names who holds it
        assert not env.target.observe(env.ctx, k.redis(env)).exists
        assert not (env.env_dir / "etc" / "supervisor.d" / "redis.conf").exists()


def test_leftovers_reports_orphaned_process_and_port() -> None:
    with k.local_env("orphans") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.echo_service(env))
        inside = env.env_dir / "data"
        # A process envplane did not start, working inside the environment: never killed
        # by destroy (it is not the run user's), but reported.
        orphan = subprocess.Popen(["sleep", "30"], cwd=inside)
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            env.target.teardown(env.ctx)
            squatter.bind(("127.0.0.1", env.ports["proxy"]))
            squatter.listen()
            found = env.target.leftovers(env.ctx, env.ports)
            assert any(f"pid {orphan.pid}" in line and "sleep" in line for line in found), found
            assert any(f"port {env.ports['proxy']} (proxy)" in line for line in found), found
            assert not any("supervisord" in line for line in found)
            assert not port_accepts(env.ports["service/backend/0"])
        finally:
            orphan.kill()
            orphan.wait()
            squatter.close()
        assert env.target.leftovers(env.ctx, env.ports) == []


def test_teardown_and_leftovers_of_nothing() -> None:
    with k.local_env("nothing") as env:
        env.target.teardown(env.ctx)
        assert env.target.leftovers(env.ctx, env.ports) == []
        seen = env.target.observe(env.ctx, k.redis(env))
        assert not seen.exists and not seen.healthy
        env.target.delete(env.ctx, k.echo_service(env))  # idempotent on nothing


@pytest.mark.skipif(os.geteuid() != 0, reason="only root switches to an unprivileged run user")
def test_directory_the_run_user_cannot_traverse_is_named() -> None:
    base = Path(tempfile.mkdtemp(prefix="envplane-private-", dir="/tmp"))  # 0700
    try:
        ctx = EnvContext(
            name="private",
            project="sunday",
            env_dir=base / "home" / "environments" / "private",
            ports={},
            secret=k.SECRETS.__getitem__,
            matrix_dir=base,
        )
        with pytest.raises(BadInput) as err:
            LocalTarget().apply(ctx, "create", k.supervisor())
        assert str(base) in str(err.value) and "not traversable" in str(err.value)
        assert err.value.hint and f"chmod o+x {base}" in err.value.hint
        assert not (base / "home").exists()
    finally:
        shutil.rmtree(base)


def test_malformed_specs_are_named() -> None:
    with k.local_env("bad-spec") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        with pytest.raises(BadInput, match=r"spec\.port"):
            env.target.apply(env.ctx, "create", Resource("redis", "redis", {"port": "x"}))
        with pytest.raises(BadInput, match="one port per replica"):
            spec = dict(k.echo_service(env).spec, replicas=2)
            env.target.apply(env.ctx, "create", Resource("service", "backend", spec))
        with pytest.raises(BadInput, match="invalid service name"):
            env.target.apply(
                env.ctx, "create", Resource("service", "../x", k.echo_service(env).spec)
            )
        with pytest.raises(BadInput, match="no resource kind 'dns'"):
            env.target.apply(env.ctx, "create", Resource("dns", "dns", {}))
        with pytest.raises(BadInput, match="config file name"):
            files = {"../../etc/passwd": "x"}
            env.target.apply(env.ctx, "create", Resource("config", "config", {"files": files}))


def test_config_files_follow_the_spec() -> None:
    with k.local_env("config-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        env.target.apply(env.ctx, "create", k.config(env, {"extra/flag.txt": "on"}))
        root = env.env_dir / "config"
        assert (root / "extra" / "flag.txt").read_text() == "on"
        (root / "app-config" / "LOG_LEVEL").write_text("tampered")
        seen = env.target.observe(env.ctx, k.config(env, {"extra/flag.txt": "on"}))
        assert not seen.healthy and "app-config/LOG_LEVEL" in seen.detail
        env.target.apply(env.ctx, "update", k.config(env))
        assert (root / "app-config" / "LOG_LEVEL").read_text() == "debug"
        assert not (root / "extra").exists()
        assert env.target.observe(env.ctx, k.config(env)).healthy
