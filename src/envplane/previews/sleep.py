"""sleep and wake: an environment's services and servers stopped, its data, ports and
directory kept; and brought back, healthy, on the same data and the same URL.

Sleep stops every program its supervisor runs (the supervisor stays: it holds nothing but
its socket) and puts the doorman on nginx's port, so the URL answers "asleep" / "waking up"
(HTTP 503, Retry-After) rather than refusing connections. Wake, an operation of its own
(journaled, resumable), asks the target to start every stopped program at once
(`WakeTarget.start_all`): the doorman lets go of the front door's port right before nginx is
started, and the wake ends once every resource observes healthy - the checks of any update.
It brings back what was applied (the recorded resources): a matrix changed while the
environment slept is `envplane update`'s to apply.

Targets that can sleep say so by being a `WakeTarget` (the local one; a cloud environment
scales to zero differently, not done here).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from envplane.desired import desired_from_record, project_of
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, OperationFailed
from envplane.plan.model import Plan
from envplane.previews.spec import spec_of
from envplane.state.previews import PreviewRecord
from envplane.state.records import EnvironmentRecord, OperationRecord
from envplane.targets.base import EnvContext, FrontDoor, WakeTarget
from envplane.workspace import Workspace

DOORMAN_PID = "doorman.pid"


class SleepPlan(registry.OperationPlan):
    environment: str
    stopped: list[str] = []


class WakePlan(registry.OperationPlan):
    environment: str


@dataclass
class SleepOutcome:
    environment: str
    asleep: bool
    stopped: list[str] = field(default_factory=list)  # asleep: stopped; awake: started
    operation_id: str | None = None
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Sleeper:
    record: EnvironmentRecord
    target: WakeTarget
    ctx: EnvContext
    door: FrontDoor
    port: int


def _sleeper(ws: Workspace, env: str, doing: str) -> _Sleeper:
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} does not exist", hint="`envplane list` shows them")
    target = ws.target(record.target or "local")
    if not isinstance(target, WakeTarget):
        raise BadInput(
            f"{doing} is for environments on the local target; {env} runs on {record.target}"
        )
    ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
    door = target.front_door(ctx)
    if door.port is None:
        raise BadInput(f"{env} has no front door (nginx) to {doing}")
    return _Sleeper(record, target, ctx, door, door.port)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent to read its exit."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def _doorman_pid(door: FrontDoor) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((door.run_dir / DOORMAN_PID).read_text().strip())
        if _alive(pid):
            return pid
    return None


def _start_doorman(ws: Workspace, env: str, door: FrontDoor, port: int, wake: bool) -> int:
    deadline = time.monotonic() + 10
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.02)  # nginx lets go of it
    args = [
        sys.executable, "-m", "envplane.previews.doorman", "--env", env,
        "--port", str(port), "--matrix", str(ws.settings.matrix_path),
        "--log", str(door.access_log),
    ]  # fmt: skip
    if wake:
        args.append("--wake")
    proc = subprocess.Popen(
        args,
        env={**os.environ, **door.environ},
        cwd=door.run_dir.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # its pid, once it listens
    proc.stdout.close()
    if not line.isdigit():
        raise OperationFailed(
            f"the doorman of {env} did not start on port {port}",
            hint=f"is the port free? `envplane wake {env}` brings the environment back",
        )
    door.run_dir.mkdir(parents=True, exist_ok=True)
    (door.run_dir / DOORMAN_PID).write_text(line + "\n")
    return int(line)


def _stop_doorman(door: FrontDoor, port: int) -> None:
    """Stop the doorman, if one runs, and wait until its port is free (nginx takes it next)."""
    pid = _doorman_pid(door)
    (door.run_dir / DOORMAN_PID).unlink(missing_ok=True)
    if pid is None:
        return  # the port may be nginx's already: nothing to wait for
    # SIGKILL at once: it holds nothing but its socket (each request's log line is one
    # write), and nginx is waiting for the port.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.001)
    deadline = time.monotonic() + 5
    while not _port_free(port) and time.monotonic() < deadline:
        time.sleep(0.002)


def sleep(ws: Workspace, env: str, *, resume_id: str | None = None) -> SleepOutcome:
    started = time.monotonic()
    it = _sleeper(ws, env, "sleep")
    out = SleepOutcome(env, True)
    if _doorman_pid(it.door) is not None and resume_id is None:
        out.messages.append(f"{env} is asleep already")
        return out
    wake = spec_of(ws).wake_on_request
    plan = SleepPlan(environment=env)
    with locked_operation(
        ws.store, env, "sleep", plan.model_dump(), resume_id=resume_id, events=ws.events
    ) as op_id:
        out.operation_id = op_id
        out.stopped = it.target.stop_all(it.ctx)
        if _doorman_pid(it.door) is None:
            _start_doorman(ws, env, it.door, it.port, wake)
        if ws.store.get_preview(env) is not None:
            with contextlib.suppress(BadInput):
                ws.store.set_preview_state(env, "asleep")
        ws.store.audit(env, "asleep", f"stopped {', '.join(out.stopped) or 'nothing'}")
    out.seconds = time.monotonic() - started
    return out


def wake(
    ws: Workspace,
    env: str,
    *,
    show_plan: Callable[[Plan], None] | None = None,
    resume_id: str | None = None,
) -> SleepOutcome:
    """Every stopped program started at once, the doorman handing nginx its port, every
    resource observed healthy. `show_plan` is not called: a wake changes no resource (it
    brings back what was applied), so there is no resource plan to show."""
    del show_plan
    started = time.monotonic()
    it = _sleeper(ws, env, "wake")
    desired = desired_from_record(ws, it.record)
    out = SleepOutcome(env, False)
    plan = WakePlan(environment=env)
    with locked_operation(
        ws.store, env, "wake", plan.model_dump(), resume_id=resume_id, events=ws.events
    ) as op_id:
        out.operation_id = op_id
        out.stopped = it.target.start_all(it.ctx, desired, lambda: _stop_doorman(it.door, it.port))
        _stop_doorman(it.door, it.port)  # nginx was not stopped: the doorman goes all the same
        ws.store.save_environment(env, status="ready")
        if ws.store.get_preview(env) is not None:
            with contextlib.suppress(BadInput):
                ws.store.set_preview_state(env, "awake")
        ws.store.audit(env, "awake", f"started {', '.join(out.stopped) or 'nothing'}")
    if not out.stopped:
        out.messages.append(f"{env} was awake: nothing to start")
    out.seconds = time.monotonic() - started
    return out


def last_request(ws: Workspace, env: str, target_name: str = "local") -> datetime | None:
    """When nginx (or the doorman) last logged a request to `env`'s front door."""
    target = ws.target(target_name)
    if not isinstance(target, WakeTarget):
        return None
    log = target.front_door(ws.context(env, {}, "")).access_log  # where, not what runs
    try:
        size = log.stat().st_size
        with log.open("rb") as f:
            f.seek(max(0, size - 4096))
            lines = f.read().splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        with contextlib.suppress(ValueError, TypeError, KeyError):
            return datetime.fromtimestamp(float(json.loads(raw)["t"]), UTC)
    return None


def is_idle(ws: Workspace, rec: PreviewRecord, at: datetime) -> bool:
    """gc's idle detector: a preview awake with no request for `previews.sleep_after` (since
    it was created or last woken, if it never had one) at `at`."""
    after = spec_of(ws).sleep_after
    if after is None or rec.state != "awake":
        return False
    seen = last_request(ws, rec.env)
    since = max(seen, rec.state_since) if seen else rec.state_since
    return (at - since).total_seconds() >= after


def put_to_sleep(ws: Workspace, env: str) -> None:
    ws.progress(f"{env}: no request for previews.sleep_after, putting it to sleep")
    sleep(ws, env)


def resume_sleep(ws: Workspace, op: OperationRecord, _plan: SleepPlan) -> Outcome:
    done = sleep(ws, op.env, resume_id=op.id)
    return Outcome(
        op.env, Plan(op.env, "local", "update", ()), op.id, applied=True, seconds=done.seconds
    )


def resume_wake(ws: Workspace, op: OperationRecord, _plan: WakePlan) -> Outcome:
    done = wake(ws, op.env, resume_id=op.id)
    return Outcome(
        op.env, Plan(op.env, "local", "update", ()), op.id, applied=True, seconds=done.seconds
    )


registry.register(
    registry.OperationKind(
        "sleep", SleepPlan, resume_sleep, "stop an environment's programs, keep its data and ports"
    )
)
registry.register(
    registry.OperationKind(
        "wake", WakePlan, resume_wake, "start a sleeping environment's programs, all at once"
    )
)
