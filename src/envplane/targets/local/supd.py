"""One supervisord per environment: its config, start (daemonized, as the run user), XML-RPC
client over the unix socket in env_dir, and shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import xmlrpc.client
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from envplane.errors import OperationFailed
from envplane.targets.local import procs
from envplane.targets.local.layout import Layout, atomic_write, python_interpreter
from envplane.targets.local.runas import RunUser

RPC_TIMEOUT = 30.0  # generous: a busy supervisord still answers within it
START_TIMEOUT = 15.0
SHUTDOWN_TIMEOUT = 20.0
CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Fault codes from supervisor.xmlrpc.Faults.
BAD_NAME = 10
ABNORMAL_TERMINATION = 40
SPAWN_ERROR = 50
ALREADY_STARTED = 60
NOT_RUNNING = 70
ALREADY_ADDED = 90
STILL_RUNNING = 91


class _UnixConnection(HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    """The standard library's transport over the unix socket. (supervisor's own one imports
    its HTTP server to do the same: a tenth of a second of every wake's CPU.) Its connection
    has a timeout: a hung supervisord must not hang envplane forever."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> HTTPConnection:
        conn = self._connection[1]
        if conn is None:  # one connection per proxy, kept alive (HTTP/1.1) between calls
            conn = _UnixConnection(self._path, self._timeout)
            self._connection = host, conn
        return conn


def client(layout: Layout, timeout: float = RPC_TIMEOUT) -> Any:
    """An XML-RPC proxy to the environment's supervisord (calls raise OSError if it is down)."""
    transport = _UnixTransport(str(layout.socket), timeout)
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def answering(layout: Layout) -> bool:
    if not layout.socket.exists():
        return False
    try:
        state = client(layout, timeout=2.0).supervisor.getState()
    except (OSError, xmlrpc.client.Error):
        return False
    return bool(state.get("statename") == "RUNNING")


def daemon_pid(layout: Layout) -> int | None:
    try:
        pid = int(layout.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    info = procs.proc_info(pid)
    if info is None or str(layout.supervisord_conf) not in info.cmdline:
        return None  # a stale pid file, or the pid now belongs to someone else
    return pid


def log_file(layout: Layout) -> Path:
    """supervisord's own log: every spawn, exit and stop of every program, with its time."""
    return layout.log / "supervisord.log"


def render_conf(layout: Layout, env_name: str) -> str:
    return f"""; Written by envplane for environment {env_name}; rewritten on every apply.
[unix_http_server]
file={layout.socket}
chmod=0700

[supervisord]
logfile={log_file(layout)}
logfile_maxbytes=5MB
logfile_backups=2
pidfile={layout.pidfile}
childlogdir={layout.log}
directory={layout.env_dir}
identifier=envplane-{env_name}
umask=027
nodaemon=false

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{layout.socket}

[include]
files={layout.conf_d}/*.conf
"""


def _command(layout: Layout) -> list[str]:
    python = python_interpreter()
    script = python.parent / "supervisord"
    if script.is_file():
        return [str(python), str(script), "-c", str(layout.supervisord_conf)]
    return [str(python), "-m", "supervisor.supervisord", "-c", str(layout.supervisord_conf)]


MARKER = "ENVPLANE_ENV_DIR"


def clean_env(layout: Layout) -> dict[str, str]:
    """supervisord and its programs get a minimal environment, never envplane's own. The marker
    is inherited by every process of the environment: teardown kills exactly those."""
    return {
        "PATH": CLEAN_PATH,
        "LANG": "C.UTF-8",
        "HOME": str(layout.env_dir),
        MARKER: str(layout.env_dir),
    }


def start(layout: Layout, user: RunUser, env_name: str) -> None:
    """Write the config and start supervisord unless it already answers; wait until it does."""
    atomic_write(layout.supervisord_conf, render_conf(layout, env_name), mode=0o600, user=user)
    if answering(layout):
        return
    stale = daemon_pid(layout)
    if stale is not None:
        _kill_group(stale)  # alive but not answering: a wedged daemon must not linger
    layout.socket.unlink(missing_ok=True)
    out = layout.log / "supervisord.start.log"
    with open(out, "wb") as handle:
        user.own(out)
        # supervisord forks into the background (its own session): it and the environment
        # survive envplane exiting or being killed. The parent exits once the socket is bound.
        proc = subprocess.run(
            _command(layout),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=layout.env_dir,
            env=clean_env(layout),
            timeout=START_TIMEOUT,
            start_new_session=True,
            check=False,
            **user.popen_kwargs(),
        )
    if proc.returncode != 0:
        raise OperationFailed(
            f"supervisord did not start (exit {proc.returncode}), "
            f"config {layout.supervisord_conf}: {procs.log_tail(out)}",
        )
    deadline = time.monotonic() + START_TIMEOUT
    while not answering(layout):
        if time.monotonic() > deadline:
            raise OperationFailed(
                f"supervisord started but its socket {layout.socket} does not answer: "
                f"{procs.log_tail(log_file(layout))}",
            )
        time.sleep(0.01)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop(layout: Layout, timeout: float = SHUTDOWN_TIMEOUT) -> None:
    """Shut supervisord down (it stops its programs first); SIGKILL it after `timeout`."""
    pid = daemon_pid(layout)
    if answering(layout):
        try:
            pid = pid or int(client(layout).supervisor.getPID())
            client(layout).supervisor.shutdown()
        except (OSError, xmlrpc.client.Error):
            pass
    if pid is None:
        return
    deadline = time.monotonic() + timeout
    while procs.alive(pid):
        if time.monotonic() > deadline:
            _kill_group(pid)
            time.sleep(0.05)
            break
        poke(layout)
        time.sleep(0.02)


def poke(layout: Layout) -> None:
    """Wake supervisord's main loop. It notices exited children only once per second (its poll
    timeout; SIGCHLD does not interrupt it), but at once when a request arrives."""
    with contextlib.suppress(OSError, xmlrpc.client.Error):
        client(layout, timeout=0.5).supervisor.getState()


def reachable_paths(layout: Layout) -> list[tuple[Path, str]]:
    python = python_interpreter()
    return [
        (layout.env_dir, "the environment directory"),
        (python.resolve(), "the Python interpreter that runs supervisord and `{python}` services"),
        (Path(os.path.realpath(xmlrpc.client.__file__)), "the Python standard library"),
        (Path(os.path.realpath(_supervisor_origin())), "the supervisor package"),
    ]


def _supervisor_origin() -> str:
    import supervisor

    return str(supervisor.__file__)
