"""sleep and wake: an environment's services and servers stopped, its data, ports and
directory kept; and brought back, healthy, on the same data and the same URL.

Sleep stops every program its supervisor runs (the supervisor stays: it holds nothing but
its socket) and puts the doorman on nginx's port, so the URL answers "asleep" / "waking up"
(HTTP 503, Retry-After) rather than refusing connections. Wake stops the doorman and runs a
normal update: every stopped program is drift the planner sees, so the update restarts each
one, checks its ports and waits for it to be healthy - the same path as any repair.

Local target only: a cloud environment scales to zero differently (not done here).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from envplane.desired import project_of
from envplane.engine import registry
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, OperationFailed
from envplane.events import Event, StepStarted
from envplane.lifecycle import update
from envplane.plan.model import Plan
from envplane.previews.spec import spec_of
from envplane.state.previews import PreviewRecord
from envplane.state.records import OperationRecord
from envplane.targets.local import nginxconf, procs, supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.layout import Layout
from envplane.workspace import Workspace

DOORMAN_PID = "doorman.pid"


class SleepPlan(registry.OperationPlan):
    environment: str
    stopped: list[str] = []


@dataclass
class SleepOutcome:
    environment: str
    asleep: bool
    stopped: list[str] = field(default_factory=list)
    operation_id: str | None = None
    seconds: float = 0.0
    messages: list[str] = field(default_factory=list)


def _local(ws: Workspace, env: str, doing: str) -> tuple[LocalEnv, int]:
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} does not exist", hint="`envplane list` shows them")
    if (record.target or "local") != "local":
        raise BadInput(
            f"{doing} is for environments on the local target; {env} runs on {record.target}"
        )
    ports = dict(record.ports or {})
    if "proxy" not in ports:
        raise BadInput(f"{env} has no front door (nginx) to {doing}")
    ctx = ws.context(env, ports, project_of(ws))
    return LocalEnv.of(ctx), int(ports["proxy"])


def doorman_pid(layout: Layout) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        pid = int((layout.run / DOORMAN_PID).read_text().strip())
        if procs.alive(pid):
            return pid
    return None


def is_asleep(ws: Workspace, env: str) -> bool:
    return doorman_pid(Layout(ws.env_dir(env))) is not None


def _start_doorman(ws: Workspace, local: LocalEnv, env: str, port: int, wake: bool) -> int:
    layout = local.layout
    deadline = time.monotonic() + 10
    while not procs.port_free(port) and time.monotonic() < deadline:
        time.sleep(0.02)  # nginx lets go of it
    args = [
        sys.executable, "-m", "envplane.previews.doorman", "--env", env, "--port", str(port),
        "--matrix", str(ws.settings.matrix_path), "--log", str(nginxconf.access_log(layout)),
    ]  # fmt: skip
    if wake:
        args.append("--wake")
    environ = {**os.environ, supd.MARKER: str(layout.env_dir)}
    proc = subprocess.Popen(
        args,
        env=environ,
        cwd=layout.env_dir,
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
    layout.run.mkdir(parents=True, exist_ok=True)
    (layout.run / DOORMAN_PID).write_text(line + "\n")
    return int(line)


def _stop_doorman(layout: Layout, port: int) -> None:
    pid = doorman_pid(layout)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while procs.alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    (layout.run / DOORMAN_PID).unlink(missing_ok=True)
    deadline = time.monotonic() + 5
    while not procs.port_free(port) and time.monotonic() < deadline:
        time.sleep(0.01)


def sleep(ws: Workspace, env: str, *, resume_id: str | None = None) -> SleepOutcome:
    started = time.monotonic()
    local, port = _local(ws, env, "sleep")
    out = SleepOutcome(env, True)
    if doorman_pid(local.layout) is not None and resume_id is None:
        out.messages.append(f"{env} is asleep already")
        return out
    wake = spec_of(ws).wake_on_request
    plan = SleepPlan(environment=env)
    with locked_operation(
        ws.store, env, "sleep", plan.model_dump(), resume_id=resume_id, events=ws.events
    ) as op_id:
        out.operation_id = op_id
        if supd.answering(local.layout):
            client = supd.client(local.layout)
            running = [
                str(p["name"])
                for p in client.supervisor.getAllProcessInfo()
                if p["statename"] in ("RUNNING", "STARTING", "BACKOFF")
            ]
            client.supervisor.stopAllProcesses()
            out.stopped = sorted(running)
        if doorman_pid(local.layout) is None:
            _start_doorman(ws, local, env, port, wake)
        if ws.store.get_preview(env) is not None:
            with contextlib.suppress(BadInput):
                ws.store.set_preview_state(env, "asleep")
        ws.store.audit(env, "asleep", f"stopped {', '.join(out.stopped) or 'nothing'}")
    out.seconds = time.monotonic() - started
    return out


def wake(
    ws: Workspace, env: str, *, show_plan: Callable[[Plan], None] | None = None
) -> SleepOutcome:
    started = time.monotonic()
    local, port = _local(ws, env, "wake")
    out = SleepOutcome(env, False)
    if doorman_pid(local.layout) is None:
        done = update(ws, env, show_plan=show_plan)
    else:
        done = _update_behind_the_doorman(ws, env, local.layout, port, show_plan)
    out.operation_id = done.operation_id
    out.stopped = [s.key for s in done.plan.changes]  # what the update started again
    if ws.store.get_preview(env) is not None:
        with contextlib.suppress(BadInput):
            ws.store.set_preview_state(env, "awake")
    ws.store.audit(env, "awake", f"operation {done.operation_id}")
    out.seconds = time.monotonic() - started
    return out


def _update_behind_the_doorman(
    ws: Workspace,
    env: str,
    layout: Layout,
    port: int,
    show_plan: Callable[[Plan], None] | None,
) -> Outcome:
    """The update that wakes the environment, with the doorman answering "waking up" until
    the moment nginx's step starts (then it lets go of the port): the URL answers all along.
    The update's own events tell when; they go on to the workspace's sink as before."""
    downstream = ws.events

    def sink(event: Event) -> None:
        if isinstance(event, StepStarted) and event.resource.startswith("proxy/"):
            _stop_doorman(layout, port)
        downstream(event)

    ws.events = sink
    try:
        done = update(ws, env, show_plan=show_plan)
    finally:
        ws.events = downstream
    _stop_doorman(layout, port)  # nginx had nothing to do: its port is free again all the same
    return done


def last_request(ws: Workspace, env: str) -> datetime | None:
    """When nginx (or the doorman) last logged a request to `env`'s front door."""
    log = nginxconf.access_log(Layout(ws.env_dir(env)))
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


registry.register(
    registry.OperationKind(
        "sleep", SleepPlan, resume_sleep, "stop an environment's programs, keep its data and ports"
    )
)
