"""Crash safety: SIGKILL `envplane create` after each step; resume finishes, destroy cleans all."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project
from tests.support import processes_under

pytestmark = pytest.mark.slow

# development, local target: supervisor, postgres, redis, storage, config, service, proxy,
# monitoring
STEPS = 8


def _steps_in_plan(project: Project) -> int:
    plan = project.json("plan", "development")
    assert isinstance(plan, dict)
    return len([s for s in plan["steps"] if s["action"] != "noop"])


@pytest.mark.parametrize("kill_after", range(1, STEPS + 1))
def test_kill_after_each_step_then_resume_and_destroy(project: Project, kill_after: int) -> None:
    assert _steps_in_plan(project) == STEPS
    killed = project.run("create", "development", ENVPLANE_FAULT_KILL_AFTER_STEP=str(kill_after))
    assert killed.returncode == -9, killed.stderr

    ops = project.json("history", "development")
    assert isinstance(ops, list) and len(ops) == 1
    op = ops[0]
    assert op["kind"] == "create" and op["status"] == "running"
    assert len([s for s in op["steps"] if s["status"] == "done"]) == kill_after

    again = project.run("create", "development")
    assert again.returncode == 2 and "resume" in again.stderr  # points the user at resume

    resumed = project.run("resume", op["id"])
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    info = project.json("info", "development")
    assert isinstance(info, dict)
    assert info["status"] == "ready"
    assert info["services"]["backend"]["healthy"] is True
    finished = project.json("history", "development")
    assert isinstance(finished, list) and finished[0]["status"] == "succeeded"

    destroyed = project.run("destroy", "development", "--force")
    assert destroyed.returncode == 0, destroyed.stderr
    assert not (project.home / "environments" / "development").exists()
    assert processes_under(project.home) == []
    history = project.json("history", "development")
    assert [o["kind"] for o in history] == ["destroy", "create"]  # type: ignore[index]
    assert json.dumps(history).count("succeeded") == 2


def test_kill_then_destroy_without_resume(project: Project) -> None:
    killed = project.run("create", "development", ENVPLANE_FAULT_KILL_AFTER_STEP="4")
    assert killed.returncode == -9
    destroyed = project.run("destroy", "development", "--force")
    assert destroyed.returncode == 0, destroyed.stderr + destroyed.stdout
    assert processes_under(project.home) == []
    assert not (project.home / "environments" / "development").exists()
