"""Supervised programs: write a program's launch spec and supervisord section, add, restart or
remove it over XML-RPC, and wait until it is ready (failing fast when it keeps crashing).

supervisord starts nothing by itself (`autostart=false`): envplane starts each program once it
has checked that the program's ports are free, so a supervisord brought back after a reboot
never throws a program against a port someone else took. A port is "ours" when the process
listening on it belongs to the environment's supervisord tree; anyone else on it is named."""

from __future__ import annotations

import contextlib
import json
import re
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
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
# supervisord will not run a program in these again by itself (EXITED is restarted at once:
# autorestart=true; BACKOFF is retried).
DOWN_STATES = ("STOPPED", "FATAL")
TROUBLE_STATES = ("BACKOFF", "FATAL", "EXITED")  # it ran and did not stay up
LOG_LINES = 5  # of a program's own log, in what observe says of a program in trouble
# A RUNNING program that exited LOOP_EXITS times within LOOP_WINDOW seconds before its current
# start (no stop of ours between) is in a restart loop: with startsecs=0 supervisord never puts
# it in BACKOFF, it just runs it again.
LOOP_EXITS = 3
LOOP_WINDOW = 30.0
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
autostart=false
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
    """What `observe` reports of a program that is missing, not RUNNING or RUNNING in a restart
    loop; None when it runs (the kind then probes it)."""
    state = info(env, name)
    if state is None:
        return Observed(False, False, "not running")
    problem = trouble(env, name, state)
    return None if problem is None else Observed(True, False, problem)


def trouble(env: LocalEnv, name: str, state: Mapping[str, Any]) -> str | None:
    """What is wrong with a program supervisord knows (its state, why, the last lines of its
    log), or None when it is RUNNING and not in a restart loop."""
    statename = str(state["statename"])
    if statename == RUNNING:
        loop = restart_loop(env, name, state)
        return None if loop is None else loop + _log_note(env, name)
    detail = statename.lower()
    if statename not in TROUBLE_STATES:
        return detail  # stopped, starting, stopping: nothing to explain
    why = str(state.get("spawnerr") or "")
    if not why and state.get("exitstatus"):
        why = f"exit status {state['exitstatus']}"
    return detail + (f" ({why})" if why else "") + _log_note(env, name)


def _log_note(env: LocalEnv, name: str) -> str:
    log = env.layout.program_log(name)
    lines = procs.log_lines(log, LOG_LINES)
    if not lines:
        return f"; {log} is empty"
    return f"; last lines of {log}: " + " | ".join(line[:200] for line in lines)


_SUPD_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) [A-Z]+ (.*)$")


def restart_loop(env: LocalEnv, name: str, state: Mapping[str, Any]) -> str | None:
    """Whether supervisord keeps restarting a RUNNING program, from its own log: the current
    process started less than LOOP_WINDOW s ago, after LOOP_EXITS exits or more within the
    LOOP_WINDOW s before that start, with no stop (ours) or giving up between them."""
    if float(state["now"]) - float(state["start"]) > LOOP_WINDOW:
        return None  # it has stayed up since: whatever happened before is over
    events: list[tuple[datetime, str]] = []
    for line in procs.log_lines(supd.log_file(env.layout), None, limit=64_000):
        match = _SUPD_LINE.match(line)
        if match and name in match.group(3):
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S")
            events.append((stamp.replace(microsecond=int(match.group(2)) * 1000), match[3]))
    spawned = f"spawned: '{name}' with pid {state['pid']}"
    starts = [i for i, (_t, msg) in enumerate(events) if msg == spawned]
    if not starts:
        return None
    began = events[starts[-1]][0]
    exits: list[str] = []
    for stamp, msg in reversed(events[: starts[-1]]):
        if (began - stamp).total_seconds() > LOOP_WINDOW:
            break
        if msg.startswith((f"stopped: {name} ", f"gave up: {name} ")):
            break
        if msg.startswith(f"exited: {name} ("):
            exits.append(msg.removeprefix(f"exited: {name} ").strip("()"))
    if len(exits) < LOOP_EXITS:
        return None
    return (
        f"restarting in a loop: exited {len(exits)} times within {LOOP_WINDOW:.0f}s "
        f"(last: {exits[0]})"
    )


def foreign_holders(env: LocalEnv, ports: Iterable[int]) -> dict[int, procs.Proc | None]:
    """Those of `ports` that a process outside this environment's supervisord tree listens on,
    each with that process (None when /proc does not show it to this user)."""
    listening = {port: inodes for port in ports if (inodes := procs.listening_inodes(port))}
    if not listening:
        return {}
    daemon = supd.daemon_pid(env.layout)
    ours = procs.process_tree(daemon) if daemon is not None else set()
    return {
        port: procs.port_owner(port)
        for port, inodes in sorted(listening.items())
        if not (ours and procs.socket_holders(inodes, ours))
    }


def _who(holder: procs.Proc | None) -> str:
    return holder.describe() if holder else "a process this user cannot see"


def held_text(port: int, holder: procs.Proc | None) -> str:
    return f"port {port} is held by {_who(holder)}"


def held_ports(env: LocalEnv, ports: Iterable[int]) -> list[str]:
    """'port N is held by pid P (COMMAND)' for each of `ports` someone else listens on."""
    return [held_text(port, holder) for port, holder in foreign_holders(env, ports).items()]


def differs(env: LocalEnv, program: Program) -> bool:
    """Whether the program was launched from another definition than `program`."""
    try:
        current = (env.layout.programs / f"{program.name}.json").read_text(encoding="utf-8")
    except OSError:
        return True
    return current != launch_spec(env, program)


def launched_env(env: LocalEnv, name: str) -> dict[str, str] | None:
    """The environment the program was launched with (from its 0600 launch spec), or None.
    It holds secret values: compare, never show."""
    try:
        spec = json.loads((env.layout.programs / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    found = spec.get("env") if isinstance(spec, dict) else None
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else None


def check_ports(
    env: LocalEnv, name: str, ports: Iterable[int], current: Mapping[str, Any] | None = None
) -> None:
    """Refuse to start (or keep) `name` on a port someone else holds, naming who. A program that
    supervisord is running stays only if the listeners on its ports are ours; one that is not
    running needs its ports free."""
    wanted = list(ports)
    active = current is not None and current["statename"] not in DOWN_STATES
    held = foreign_holders(env, wanted)
    if not active:
        for port in wanted:
            if port not in held and not procs.port_free(port):
                held[port] = procs.port_owner(port)
    if not held:
        return
    if active:
        # It cannot have its port: left alone it would exit and be restarted over and over.
        _halt(supd.client(env.layout), name)
    taken = "; ".join(
        f"port {port} on 127.0.0.1 is already in use by {_who(holder)}"
        for port, holder in sorted(held.items())
    )
    pids = sorted({h.pid for h in held.values() if h is not None})
    kill = f" (`kill {' '.join(map(str, pids))}`)" if pids else ""
    raise PortInUse(
        f"{name}: {taken}",
        hint=f"stop that process or free the port{kill}, then apply again; or destroy and "
        "re-create the environment to get new ports",
    )


def ensure(env: LocalEnv, program: Program, ports: Iterable[int] = ()) -> str:
    """Make the program run with this definition: 'started', 'restarted' or 'unchanged'.
    Its ports are checked first: someone else on one is a PortInUse naming them."""
    layout = env.layout
    rpc = supd.client(layout)
    with env.lock():
        current = info(env, program.name)
        check_ports(env, program.name, ports, current)  # before anything is written or started
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
            _launch(rpc, program.name)
            return "started"
        if conf_changed:
            _stop(rpc, program.name)
            rpc.supervisor.reloadConfig()
            _remove(rpc, program.name)
            _add(rpc, program.name)
            _launch(rpc, program.name)
            return "restarted"
        if spec_changed or current["statename"] != RUNNING:
            _stop(rpc, program.name)
            _launch(rpc, program.name)
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


def _launch(rpc: Any, name: str) -> None:
    """Start without waiting: `wait_ready` follows, and says with the log why a program that
    died at once did."""
    try:
        rpc.supervisor.startProcess(name, False)
    except xmlrpc.client.Fault as fault:
        if fault.faultCode not in (
            supd.ALREADY_STARTED,
            supd.SPAWN_ERROR,
            supd.ABNORMAL_TERMINATION,
        ):
            raise


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


def _halt(rpc: Any, name: str, timeout: float = 10.0) -> None:
    """Stop a program that may be restarting in a loop: caught between two runs (EXITED) it
    cannot be stopped, and supervisord runs it again a moment later, so try until it is down."""
    deadline = time.monotonic() + timeout
    while True:
        _stop(rpc, name)
        state = rpc.supervisor.getProcessInfo(name)["statename"]
        if state in DOWN_STATES or time.monotonic() > deadline:
            return
        time.sleep(POLL)


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
        _halt(supd.client(env.layout), name)
    log = env.layout.program_log(name)
    raise OperationFailed(
        f"{name} {what}\n--- last lines of {log} ---\n{procs.log_tail(log)}",
        hint=f"see {log}; fix the cause, then apply again",
    )
