"""Supervised programs: write a program's launch spec and supervisord section, add, restart or
remove it over XML-RPC, and wait until it is ready (failing fast when it keeps crashing)."""

from __future__ import annotations

import contextlib
import json
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from envplane.errors import OperationFailed
from envplane.targets.base import Observed
from envplane.targets.local import procs, supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import atomic_write, python_interpreter

READY_TIMEOUT = 20.0
POLL = 0.02
RUNNING = "RUNNING"
STOPPED_STATES = ("STOPPED", "EXITED", "FATAL")
Probe = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)
    stopsignal: str = "TERM"
    stopasgroup: bool = True
    stopwaitsecs: int = 10


class PortInUse(OperationFailed):
    """A port the environment owns is held by a process that is not ours."""


def launch_spec(env: LocalEnv, program: Program) -> str:
    base = supd.clean_env(env.layout)
    full_env = {**base, **program.env, supd.MARKER: base[supd.MARKER]}
    return json.dumps({"argv": program.argv, "cwd": str(program.cwd), "env": full_env}, indent=1)


def _section(env: LocalEnv, program: Program) -> str:
    layout = env.layout
    spec = layout.programs / f"{program.name}.json"
    stopasgroup = "true" if program.stopasgroup else "false"
    return f"""[program:{program.name}]
command={python_interpreter()} -I -S {layout.launcher} {spec}
directory={layout.env_dir}
autostart=true
autorestart=true
startsecs=0
stopsignal={program.stopsignal}
stopwaitsecs={program.stopwaitsecs}
stopasgroup={stopasgroup}
killasgroup=true
redirect_stderr=true
stdout_logfile={layout.program_log(program.name)}
stdout_logfile_maxbytes=5MB
stdout_logfile_backups=1
"""


def info(env: LocalEnv, name: str) -> dict[str, Any] | None:
    """supervisord's view of one program, or None when it (or supervisord) does not exist."""
    try:
        result: dict[str, Any] = supd.client(env.layout, timeout=5.0).supervisor.getProcessInfo(
            name
        )
    except xmlrpc.client.Fault as fault:
        if fault.faultCode == supd.BAD_NAME:
            return None
        raise
    except OSError:
        return None
    return result


def not_running(env: LocalEnv, name: str) -> Observed | None:
    """What `observe` reports of a program that is missing or not RUNNING; None when it runs
    (the kind then probes it)."""
    state = info(env, name)
    if state is None:
        return Observed(False, False, "not running")
    if state["statename"] != RUNNING:
        return Observed(True, False, state["statename"].lower())
    return None


def differs(env: LocalEnv, program: Program) -> bool:
    """Whether the program was launched from another definition than `program`."""
    try:
        current = (env.layout.programs / f"{program.name}.json").read_text(encoding="utf-8")
    except OSError:
        return True
    return current != launch_spec(env, program)


def check_ports_free(owner: str, ports: Iterable[int]) -> None:
    for port in ports:
        if procs.port_free(port):
            continue
        holder = procs.port_owner(port)
        who = holder.describe() if holder else "another process"
        raise PortInUse(
            f"{owner}: port {port} on 127.0.0.1 is already in use by {who}",
            hint="stop that process, or destroy and re-create the environment to get new ports",
        )


def ensure(env: LocalEnv, program: Program, ports: Iterable[int] = ()) -> str:
    """Make the program run with this definition: 'started', 'restarted' or 'unchanged'."""
    layout = env.layout
    rpc = supd.client(layout)
    with env.lock():
        current = info(env, program.name)
        if current is None or current["statename"] != RUNNING:
            check_ports_free(program.name, ports)  # before anything is written or started
        # The launch spec holds secret values: 0600, owned by the run user, never logged.
        spec_changed = atomic_write(
            layout.programs / f"{program.name}.json",
            launch_spec(env, program),
            mode=0o600,
            user=env.user,
        )
        conf = layout.conf_d / f"{program.name}.conf"
        conf_changed = atomic_write(conf, _section(env, program), mode=0o600, user=env.user)
        if current is None:
            rpc.supervisor.reloadConfig()
            _add(rpc, program.name)
            return "started"
        if conf_changed:
            _stop(rpc, program.name)
            rpc.supervisor.reloadConfig()
            _remove(rpc, program.name)
            _add(rpc, program.name)
            return "restarted"
        if spec_changed or current["statename"] != RUNNING:
            _stop(rpc, program.name)
            _start(rpc, program.name)
            return "restarted"
    return "unchanged"


def remove(env: LocalEnv, name: str) -> None:
    """Stop the program, drop it from supervisord and delete its files; fine if it is gone."""
    layout = env.layout
    with env.lock():
        if supd.answering(layout):
            rpc = supd.client(layout)
            _stop(rpc, name)
            _remove(rpc, name)
        (layout.conf_d / f"{name}.conf").unlink(missing_ok=True)
        (layout.programs / f"{name}.json").unlink(missing_ok=True)
        if supd.answering(layout):
            supd.client(layout).supervisor.reloadConfig()


def stop(env: LocalEnv, name: str) -> None:
    """Stop a program and wait until it has; supervisord keeps its definition."""
    _stop(supd.client(env.layout), name)


def start(env: LocalEnv, name: str) -> None:
    _start(supd.client(env.layout), name)


def restart(env: LocalEnv, name: str) -> None:
    rpc = supd.client(env.layout)
    _stop(rpc, name)
    _start(rpc, name)


def _idempotent(call: Any, already: int, *args: Any) -> None:
    """An RPC whose 'already so' fault means success: re-running a step must not fail."""
    try:
        call(*args)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode != already:
            raise


def _add(rpc: Any, name: str) -> None:
    _idempotent(rpc.supervisor.addProcessGroup, supd.ALREADY_ADDED, name)


def _remove(rpc: Any, name: str) -> None:
    _idempotent(rpc.supervisor.removeProcessGroup, supd.BAD_NAME, name)


def _start(rpc: Any, name: str) -> None:
    _idempotent(rpc.supervisor.startProcess, supd.ALREADY_STARTED, name, True)


def _stop(rpc: Any, name: str, timeout: float = 60.0) -> None:
    """Stop and wait, polling: supervisord's own wait=True answers only on its 1 s tick."""
    try:
        rpc.supervisor.stopProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode not in (supd.NOT_RUNNING, supd.BAD_NAME):
            raise
        return
    deadline = time.monotonic() + timeout
    while rpc.supervisor.getProcessInfo(name)["statename"] not in STOPPED_STATES:
        if time.monotonic() > deadline:
            raise OperationFailed(f"{name} did not stop within {timeout:.0f}s")
        time.sleep(0.01)


def wait_ready(env: LocalEnv, name: str, probe: Probe, *, timeout: float = READY_TIMEOUT) -> None:
    """Poll `probe` until it passes; fail fast with the log tail if the program keeps exiting."""
    deadline = time.monotonic() + timeout
    pids: set[int] = set()
    detail = "not probed yet"
    while True:
        ok, detail = probe()
        if ok:
            return
        current = info(env, name)
        if current is None:
            _fail(env, name, "is not known to supervisord (was it removed?)")
        elif current["statename"] == RUNNING:
            pids.add(int(current["pid"]))
        elif current["statename"] == "FATAL":
            _fail(env, name, "could not be started")
        if len(pids) > 3:
            _fail(
                env, name, f"keeps exiting (restarted {len(pids) - 1} times); last check: {detail}"
            )
        if time.monotonic() > deadline:
            _fail(env, name, f"is not ready after {timeout:.0f}s; last check: {detail}")
        time.sleep(POLL)


def _fail(env: LocalEnv, name: str, what: str) -> NoReturn:
    # A crash-looping program must not be left behind to spin; its config stays for `resume`.
    with contextlib.suppress(OSError, xmlrpc.client.Error):
        _stop(supd.client(env.layout), name)
    log = env.layout.program_log(name)
    raise OperationFailed(
        f"{name} {what}\n--- last lines of {log} ---\n{procs.log_tail(log)}",
        hint=f"see {log}; fix the cause, then apply again",
    )
