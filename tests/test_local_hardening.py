"""Issue 9 (items 2, 12, 13) on real servers: a port of the environment held by someone else, a
program that cannot stay up, static files deleted under nginx, and a smoke test that must leave
the app's database as it found it."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from envplane.errors import OperationFailed
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.local import supd
from envplane.targets.local.layout import Layout
from tests import localkit as k
from tests.conftest import EXAMPLE, Project, open_tmpdir
from tests.support import teardown_project

pytestmark = pytest.mark.slow

ENV = "development"
NOTHING_TO_DO = "0 to create, 0 to update, 0 to delete"

# Someone else's server: answers every GET with 200, as a real intruder on a port would.
INTRUDER = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"intruder"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("listening", flush=True)
server.serve_forever()
"""


@contextmanager
def intruder(port: int) -> Iterator[subprocess.Popen[str]]:
    folder = open_tmpdir("envplane-intruder-")
    script = folder / "intruder.py"
    script.write_text(INTRUDER, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "listening"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, ""


def _ports(project: Project) -> dict[str, int]:
    con = sqlite3.connect(project.home / "state.db")
    try:
        row = con.execute("select ports from environments where name = ?", (ENV,)).fetchone()
    finally:
        con.close()
    return {str(key): int(port) for key, port in json.loads(row[0]).items()}


def _status(project: Project) -> tuple[str, str]:
    info = project.json("info", ENV)
    listed = project.json("list")
    assert isinstance(info, dict) and isinstance(listed, list)
    return str(info["status"]), next(str(e["status"]) for e in listed if e["name"] == ENV)


def _stop_environment(project: Project) -> None:
    """As after a reboot: supervisord and every program of the environment are gone."""
    supd.stop(Layout(project.home / "environments" / ENV))


# -- item 2: a foreign listener on a recorded port --------------------------------------------


def test_a_foreign_listener_on_a_recorded_port_is_named(project: Project) -> None:
    created = project.run("create", ENV)
    assert created.returncode == 0, created.stderr + created.stdout
    ports = _ports(project)
    frontend = f"http://127.0.0.1:{ports['proxy']}/"
    _stop_environment(project)
    # Stopped, the store still says its last operation left it ready; info and list say what
    # runs: it is degraded.
    assert _status(project) == ("degraded", "degraded")

    with intruder(ports["proxy"]) as squatter:
        held = f"port {ports['proxy']} is held by pid {squatter.pid}"
        plan = project.run("plan", ENV)
        assert plan.returncode == 0, plan.stderr
        assert held in plan.stdout and "intruder.py" in plan.stdout, plan.stdout

        started = time.monotonic()
        update = project.run("update", ENV)
        elapsed = time.monotonic() - started
        assert update.returncode == 1, update.stdout + update.stderr
        assert "No changes" not in update.stdout
        assert f"pid {squatter.pid}" in update.stderr and "intruder.py" in update.stderr
        assert "stop that process" in update.stderr, update.stderr
        assert elapsed < 15, f"update took {elapsed:.1f}s to refuse"
        assert "ready" not in _status(project)  # neither info nor list says ready
        assert _get(frontend) == (200, "intruder")  # nothing of ours fought it for the port
        again = project.run("plan", ENV)
        assert held in again.stdout, again.stdout

    fixed = project.run("update", ENV)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    status, page = _get(frontend)
    assert status == 200 and "<html" in page.lower()
    assert _status(project) == ("ready", "ready")
    assert NOTHING_TO_DO in project.run("plan", ENV).stdout

    # The same on the Redis port, which used to time out after 20 s with the cause in a log.
    _stop_environment(project)
    with intruder(ports["redis"]) as squatter:
        started = time.monotonic()
        update = project.run("update", ENV)
        elapsed = time.monotonic() - started
        assert update.returncode == 1, update.stdout + update.stderr
        assert f"port {ports['redis']}" in update.stderr
        assert f"pid {squatter.pid}" in update.stderr and "intruder.py" in update.stderr
        assert elapsed < 10, f"update took {elapsed:.1f}s to refuse"
        assert "is not ready after" not in update.stderr


def test_a_program_looping_on_a_taken_port_is_refused_and_unhealthy() -> None:
    with k.local_env("port-loop") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        svc = k.echo_service(env)
        env.target.apply(env.ctx, "create", svc)
        port = env.ports["service/backend/0"]
        rpc = supd.client(Layout(env.env_dir))
        rpc.supervisor.stopProcess("svc-backend-0", True)
        with intruder(port) as squatter:
            # supervisord runs it again: it cannot bind, exits, is restarted, over and over.
            rpc.supervisor.startProcess("svc-backend-0", False)
            seen = env.target.observe(env.ctx, svc)
            assert not seen.healthy
            assert f"port {port} is held by pid {squatter.pid}" in seen.detail, seen.detail
            assert "intruder.py" in seen.detail
            (status,) = env.target.services(env.ctx, _desired(svc))
            assert status.ready == 0

            started = time.monotonic()
            with pytest.raises(OperationFailed) as err:
                env.target.apply(env.ctx, "update", svc)
            assert time.monotonic() - started < 5
            message = str(err.value) + (err.value.hint or "")
            assert f"pid {squatter.pid}" in message and "intruder.py" in message
            assert "stop that process" in message
            # Refused means stopped: the program does not keep fighting for the port.
            state = rpc.supervisor.getProcessInfo("svc-backend-0")["statename"]
            assert state == "STOPPED", state
        env.target.apply(env.ctx, "update", svc)
        assert env.target.observe(env.ctx, svc).healthy
        assert k.call(port, "/")[1] == "replica=0 msg=hello"


def _desired(*resources: Resource) -> DesiredEnvironment:
    return DesiredEnvironment(
        name="x", project="sunday", target="local", resources=tuple(resources)
    )


# -- item 2: a program that cannot stay up ----------------------------------------------------


def test_a_program_forced_into_fatal_is_unhealthy_with_its_log() -> None:
    with k.local_env("fatal-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        svc = k.echo_service(env)
        env.target.apply(env.ctx, "create", svc)
        name = "svc-backend-0"
        conf = env.env_dir / "etc" / "supervisor.d" / f"{name}.conf"
        section = conf.read_text(encoding="utf-8")
        broken = re.sub(
            r"(?m)^command=.*$", 'command=/bin/sh -c "echo boom: no config; exit 3"', section
        )
        broken = re.sub(r"(?m)^startsecs=.*$", "startsecs=5\nstartretries=0", broken)
        broken = re.sub(r"(?m)^autostart=.*$", "autostart=true", broken)
        rpc = supd.client(Layout(env.env_dir))
        rpc.supervisor.stopProcess(name, True)
        conf.write_text(broken, encoding="utf-8")
        rpc.supervisor.reloadConfig()
        rpc.supervisor.removeProcessGroup(name)
        rpc.supervisor.addProcessGroup(name)
        k.wait_for(
            lambda: rpc.supervisor.getProcessInfo(name)["statename"] == "FATAL",
            what=f"{name} in FATAL",
        )
        seen = env.target.observe(env.ctx, svc)
        assert seen.exists and not seen.healthy
        assert "fatal" in seen.detail.lower() and "boom: no config" in seen.detail, seen.detail

        env.target.apply(env.ctx, "update", svc)  # the spec's section again, started again
        assert env.target.observe(env.ctx, svc).healthy


FLAKY = """
import os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
def die():
    print("flaky: lost my mind", flush=True)
    os._exit(1)
threading.Timer(0.7, die).start()
server.serve_forever(poll_interval=0.1)
"""


def test_a_program_in_a_restart_loop_is_unhealthy() -> None:
    with k.local_env("loop-test") as env:
        env.target.apply(env.ctx, "create", k.supervisor())
        base = k.echo_service(env)
        svc = Resource("service", "backend", dict(base.spec, command=[sys.executable, "-c", FLAKY]))
        env.target.apply(env.ctx, "create", svc)  # healthy for a moment: apply is satisfied

        def looping() -> bool:
            seen = env.target.observe(env.ctx, svc)
            return not seen.healthy and "restart" in seen.detail

        k.wait_for(looping, timeout=30, what="observe to see the restart loop")
        seen = env.target.observe(env.ctx, svc)
        assert "flaky: lost my mind" in seen.detail, seen.detail
        (status,) = env.target.services(env.ctx, _desired(svc))
        assert status.ready == 0


# -- items 12 and 13, on one running environment ----------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[Project]:
    base = open_tmpdir("envplane-test-")
    root = base / "sunday"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".envplane", "__pycache__"))
    proj = Project(root=root, home=base / "home")
    try:
        created = proj.run("create", ENV)
        assert created.returncode == 0, created.stderr + created.stdout
        yield proj
    finally:
        teardown_project(proj)
        shutil.rmtree(base, ignore_errors=True)


def test_deleted_static_file_is_drift_and_update_restores_it(running: Project) -> None:
    ports = _ports(running)
    frontend = f"http://127.0.0.1:{ports['proxy']}/"
    index = running.home / "environments" / ENV / "frontend" / "index.html"
    assert _get(frontend)[0] == 200
    index.unlink()
    assert _get(frontend)[0] != 200  # nginx answers 403: the directory has no index

    plan = running.run("plan", ENV)
    assert plan.returncode == 0, plan.stderr
    assert re.search(r"~ proxy/nginx +drift: unhealthy \(.*index\.html missing", plan.stdout), (
        plan.stdout
    )
    assert running.run("validate", ENV).returncode == 1

    update = running.run("update", ENV)
    assert update.returncode == 0, update.stdout + update.stderr
    status, page = _get(frontend)
    assert status == 200 and "<html" in page.lower()
    assert NOTHING_TO_DO in running.run("plan", ENV).stdout

    index.write_text("<html>changed by hand</html>", encoding="utf-8")
    plan = running.run("plan", ENV)
    assert "index.html changed" in plan.stdout, plan.stdout
    assert running.run("update", ENV).returncode == 0
    assert "changed by hand" not in _get(frontend)[1]


def _items(project: Project) -> tuple[list[tuple[Any, ...]], int]:
    import psycopg

    info = project.json("info", ENV, "--show-secrets")
    assert isinstance(info, dict)
    with psycopg.connect(info["endpoints"]["postgres"], connect_timeout=5) as conn:
        exists = conn.execute("SELECT to_regclass('items')").fetchone()
        if exists is None or exists[0] is None:
            return [], 0
        rows = conn.execute("SELECT id, name, created_at FROM items ORDER BY id").fetchall()
        (last,) = conn.execute("SELECT last_value FROM items_id_seq").fetchone() or (0,)
        return rows, int(last)


def test_validate_leaves_the_database_as_it_found_it(running: Project) -> None:
    ports = _ports(running)
    # Some rows of the app's own, so "the same rows" means something.
    for name in ("first", "second"):
        assert k.call(ports["proxy"], "/api/items", "POST", {"name": name})[0] == 201
    before = _items(running)
    assert [r[1] for r in before[0]] == ["first", "second"]
    for _ in range(2):
        validated = running.run("validate", ENV, "--level", "comprehensive")
        assert validated.returncode == 0, validated.stdout + validated.stderr
        assert re.search(r"PASS\s+smoke", validated.stdout), validated.stdout
    assert _items(running) == before
