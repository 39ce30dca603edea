"""The operation model, driven in-process: the registry of kinds and their typed plans, the one
step runner and its journal, and a resume that takes the operation over."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import envplane.service.operations  # imports every capability: every kind registered
from envplane import events as ev
from envplane.data.documents import BackupOperationPlan, RestorePlan, TransferPlan
from envplane.delivery.documents import DeployPlan
from envplane.delivery.scaledown import ScaleDownPlan
from envplane.engine import registry
from envplane.engine import steps as engine_steps
from envplane.errors import BadInput, OperationFailed
from envplane.lifecycle.documents import ResourcePlan
from envplane.previews.sleep import SleepPlan, WakePlan
from envplane.state.store import StateStore
from envplane.workspace import Workspace
from tests.conftest import Project


def test_every_operation_kind_is_registered_with_its_plan_model() -> None:
    kinds = registry.kinds()
    assert {k: v.plan for k, v in kinds.items()} == {
        "create": ResourcePlan,
        "update": ResourcePlan,
        "destroy": ResourcePlan,
        "clone": TransferPlan,
        "sync": TransferPlan,
        "restore": RestorePlan,
        "backup": BackupOperationPlan,
        "deploy": DeployPlan,
        "rollback": DeployPlan,
        "scale-down": ScaleDownPlan,
        "sleep": SleepPlan,
        "wake": WakePlan,
    }


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    s = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}", tmp_path)
    s.save_environment("dev", target="local", status="ready")
    return s


def test_a_journaled_plan_is_read_back_as_its_kinds_model(store: StateStore) -> None:
    plan = {
        "operation": "clone",
        "environment": "dev",
        "source": "staging",
        "unmasked": True,
        "steps": ["data/stop-services", "postgres/postgres"],
        "from_an_older_version": 1,
    }
    op = store.start_operation("dev", "clone", plan)
    typed = registry.read_plan(op)
    assert isinstance(typed, TransferPlan)
    assert (typed.source, typed.unmasked, typed.steps[1]) == ("staging", True, "postgres/postgres")
    broken = store.start_operation("dev", "restore", {"operation": "restore"})
    with pytest.raises(BadInput, match="no resumable plan"):
        registry.read_plan(broken)
    odd = store.start_operation("dev", "promote", {})
    with pytest.raises(BadInput, match="cannot be resumed") as info:
        registry.read_plan(odd)
    assert "clone" in (info.value.hint or "")


def test_steps_run_in_stages_journal_their_action_and_report_events(store: StateStore) -> None:
    op = store.start_operation("dev", "sync", {})
    order: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> engine_steps.Step:
        def run() -> None:
            with lock:
                order.append(name)

        action = {"data/stop": "stop", "data/start": "start"}.get(name, "copy")
        return engine_steps.Step(name, action, run)  # type: ignore[arg-type]

    stages = [[work("data/stop")], [work("postgres/postgres"), work("redis/redis")],
              [work("data/start")]]  # fmt: skip
    seen: list[ev.Event] = []
    ran = engine_steps.run(store, op.id, engine_steps.in_stages(stages), events=seen.append)
    assert ran == 4
    assert order[0] == "data/stop" and order[-1] == "data/start"
    assert set(order[1:3]) == {"postgres/postgres", "redis/redis"}
    journaled = store.get_operation(op.id)
    assert journaled is not None
    assert [(s.resource_key, s.action, s.status) for s in journaled.steps] == [
        ("data/stop", "stop", "done"),
        ("postgres/postgres", "copy", "done"),
        ("redis/redis", "copy", "done"),
        ("data/start", "start", "done"),
    ]
    started = [e for e in seen if isinstance(e, ev.StepStarted)]
    assert [e.position for e in started] == [1, 2, 3, 4] and {e.total for e in started} == {4}
    assert len([e for e in seen if isinstance(e, ev.StepFinished)]) == 4


def test_a_failed_step_is_journaled_and_nothing_after_it_starts(store: StateStore) -> None:
    op = store.start_operation("dev", "restore", {})

    def boom() -> None:
        raise RuntimeError("disk full")

    later: list[str] = []
    steps = engine_steps.in_stages(
        [[engine_steps.Step("postgres/postgres", "import", boom)],
         [engine_steps.Step("data/start", "start", lambda: later.append("x"))]]
    )  # fmt: skip
    with pytest.raises(OperationFailed, match="import postgres/postgres failed: RuntimeError"):
        engine_steps.run(store, op.id, steps)
    journaled = store.get_operation(op.id)
    assert journaled is not None and later == []
    assert [(s.action, s.status) for s in journaled.steps] == [("import", "failed")]
    assert "disk full" in journaled.steps[0].detail
    # A resume skips what was done and runs the rest.
    assert engine_steps.done_steps(store, op.id) == frozenset()


@pytest.mark.slow
def test_resume_takes_the_operation_over(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    killed = project.run("create", "development", ENVPLANE_FAULT_KILL_AFTER_STEP="2")
    assert killed.returncode == -9, killed.stderr
    monkeypatch.setenv("ENVPLANE_HOME", str(project.home))
    seen: list[tuple[str, int]] = []
    ws: Workspace

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted):
            row = ws.store.get_operation(event.operation_id)
            assert row is not None
            seen.append((row.status, row.pid))

    ws = Workspace.from_matrix(project.matrix, events=sink)
    try:
        op = ws.store.operations("development")[0]
        assert op.status == "running" and op.pid != os.getpid()  # the dead process's
        outcome = envplane.service.resume(ws, op.id)
        assert outcome.applied and outcome.operation_id == op.id
        assert seen and set(seen) == {("running", os.getpid())}  # ours while it runs
        after = ws.store.get_operation(op.id)
        assert after is not None and after.status == "succeeded"
        assert [s.index for s in after.steps] == list(range(len(after.steps)))
        audit = [a for a in ws.store.audit_log("development") if a.action == "resumed"]
        assert audit and op.id in audit[0].detail
    finally:
        ws.close()
    assert project.run("destroy", "development", "--force").returncode == 0
