"""The end of blue-green's `scale_down_delay`: the old color it kept is stopped.

`envplane scale-down ENV` stops every kept color now (a rollback after it is a full rollout);
`--when-due` waits until each one's delay is over first. A blue-green deploy that keeps a
color starts `scale-down --when-due` as a background process of its own session, so the kept
color does not outlive its delay; if that process is gone (a reboot), the next rollout in the
environment, or this command, stops what is overdue. Each stop is a journaled operation under
the environment's lock; when another operation holds the lock, that one retires the kept color
itself (every rollout does), so the waiting process just ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from envplane.delivery.rollouts import kept_colors
from envplane.desired import project_of
from envplane.engine import registry
from envplane.engine import steps as engine_steps
from envplane.engine.operation import locked_operation
from envplane.engine.outcome import Outcome
from envplane.errors import BadInput, LockHeld
from envplane.names import check_env_name
from envplane.plan.model import Plan

if TYPE_CHECKING:
    from envplane.state.records import OperationRecord
    from envplane.workspace import Workspace

MAX_WAIT = 24 * 3600.0  # a background wait never outlives a day
POLL = 2.0


class ScaleDownPlan(registry.OperationPlan):
    environment: str
    services: list[str]  # whose kept color this stops


@dataclass
class ScaleDownResult:
    environment: str
    stopped: dict[str, str] = field(default_factory=dict)  # service -> the color stopped
    kept: dict[str, str] = field(default_factory=dict)  # service -> until when it stays
    operation_id: str | None = None


def _until(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(entry.get("until")))


def retire(
    retained: dict[str, Any],
    *,
    replicas: Callable[[str, str], list[int]],
    stop: Callable[[str, str, int], None],
    only: list[str] | None,
) -> dict[str, Any]:
    """Stop the kept colors whose delay is over, and those of the services in `only` at once;
    what stays kept."""
    now = datetime.now(UTC)
    kept: dict[str, Any] = {}
    for service, entry in retained.items():
        if (only is not None and service in only) or _until(entry) <= now:
            color = str(entry["color"])
            for replica in replicas(service, color):
                stop(service, color, replica)
        else:
            kept[service] = entry
    return kept


def scale_down(ws: Workspace, env: str, *, due_only: bool = False) -> ScaleDownResult:
    """Stop the colors blue-green keeps in `env`: all of them, or (`due_only`) those whose
    delay is over."""
    check_env_name(env)
    record = ws.store.get_environment(env)
    if record is None or record.status == "destroyed":
        raise BadInput(f"environment {env!r} does not exist", hint=f"envplane create {env}")
    result = ScaleDownResult(env)
    live = ws.store.get_live(env)
    retained = dict(live.retained) if live is not None else {}
    if not retained:
        return result
    now = datetime.now(UTC)
    todo = [s for s, e in retained.items() if not due_only or _until(e) <= now]
    result.kept = {s: str(e["until"]) for s, e in retained.items() if s not in todo}
    if not todo:
        return result
    plan = ScaleDownPlan(environment=env, services=todo)
    with locked_operation(ws.store, env, "scale-down", plan.model_dump(), events=ws.events) as op:
        result.operation_id = op
        result.stopped = _stop_kept(ws, env, op, todo)
        ws.store.audit(env, "scale-down", ", ".join(f"{s} {c}" for s, c in result.stopped.items()))
    return result


def _stop_kept(
    ws: Workspace, env: str, op_id: str, services: list[str], first_index: int = 0
) -> dict[str, str]:
    record = ws.store.get_environment(env)
    assert record is not None
    delivery = kept_colors(ws, env)
    ctx = ws.context(env, dict(record.ports or {}), project_of(ws))
    live = ws.store.get_live(env)  # read again under the lock: a rollout may have retired it
    retained = dict(live.retained) if live is not None else {}
    stopped = {s: str(retained[s]["color"]) for s in services if s in retained}
    index = first_index

    def stop(service: str, color: str, replica: int) -> None:
        nonlocal index

        def work() -> None:
            delivery.stop_replica(ctx, service, color, replica)

        key = f"service/{service}/{color}-{replica}"
        engine_steps.run(
            ws.store,
            op_id,
            [engine_steps.Step(key, "stop", work)],
            first_index=index,
            events=ws.events,
        )
        index += 1
        ws.progress(f"{service}: kept {color} replica {replica} stopped")

    kept = retire(
        retained,
        replicas=lambda s, c: delivery.replicas(ctx, s, c),
        stop=stop,
        only=[s for s in services if s in retained],
    )
    ws.store.set_retained(env, kept)
    return stopped


def wait_then_scale_down(ws: Workspace, env: str) -> ScaleDownResult:
    """Sleep until the first kept color's delay is over, stop what is due, and again until
    nothing is kept; ends quietly when another operation holds the lock (it retires them)."""
    deadline = time.monotonic() + MAX_WAIT
    result = ScaleDownResult(env)
    while time.monotonic() < deadline and ws.settings.home.is_dir():
        live = ws.store.get_live(env)
        retained = dict(live.retained) if live is not None else {}
        if not retained:
            return result  # retired by a rollout, or the environment is gone
        first = min(_until(e) for e in retained.values())
        wait = (first - datetime.now(UTC)).total_seconds()
        if wait > 0:
            # Looked at again every few seconds: a rollback or destroy meanwhile ends the wait.
            time.sleep(min(wait + 0.05, POLL))
            continue
        try:
            done = scale_down(ws, env, due_only=True)
        except LockHeld:
            return result
        result.stopped.update(done.stopped)
        result.operation_id = done.operation_id or result.operation_id
    return result


def start_in_background(ws: Workspace, env: str) -> None:
    """`envplane scale-down ENV --when-due` in a session of its own (it outlives the deploy
    command and a terminal closing), its output in the environment's directory."""
    folder = ws.settings.env_dir(env)
    folder.mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ,  # the state database's URL, when one is set, with the rest
        "ENVPLANE_HOME": str(ws.settings.home),
        "ENVPLANE_ENV_DIR": str(folder),  # as every process of the environment carries
        "NO_COLOR": "1",
    }
    argv = [
        sys.executable,
        "-c",
        "from envplane.cli.main import main; main()",
        "-f",
        str(ws.settings.matrix_path),
        "scale-down",
        env,
        "--when-due",
    ]
    with (folder / "scale-down.log").open("ab") as log:
        subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=child_env,
            start_new_session=True,
            close_fds=True,
        )


def resume_scale_down(ws: Workspace, op: OperationRecord, plan: ScaleDownPlan) -> Outcome:
    """A killed scale-down: stop again what it was stopping (stopping is idempotent)."""
    started = time.monotonic()
    with locked_operation(
        ws.store, op.env, "scale-down", plan.model_dump(), resume_id=op.id, events=ws.events
    ):
        stopped = _stop_kept(ws, op.env, op.id, list(plan.services), len(op.steps))
    return Outcome(
        op.env,
        Plan(op.env, "local", "scale-down", ()),
        op.id,
        applied=True,
        seconds=time.monotonic() - started,
        messages=[f"stopped the kept {c} color of {s}" for s, c in stopped.items()],
    )


registry.register(
    registry.OperationKind(
        "scale-down",
        ScaleDownPlan,
        resume_scale_down,
        "stop the old color blue-green kept for a switch-only rollback",
    )
)
