"""Every operation declares what it reads and what it changes: a backup, a clone's or a
sync's source are read under a shared lock, so nothing changes or destroys them meanwhile.

Driven in-process: while the operation runs (inside one of its steps, reported by an event),
the test starts the conflicting operation as a real `envplane` process and checks that it is
refused with exit 3 naming the holder, and that nothing of it was recorded."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest

from envplane import events as ev
from envplane import service
from envplane.workspace import Workspace
from tests.conftest import Project
from tests.datakit import digest, seed

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    assert project.run("create", "development").returncode == 0
    monkeypatch.setenv("ENVPLANE_HOME", str(project.home))
    monkeypatch.setenv("NO_COLOR", "1")
    workspace = Workspace.from_matrix(project.matrix)
    yield workspace
    workspace.close()


def during_first_step(
    ws: Workspace, project: Project, *args: str
) -> list[subprocess.CompletedProcess[str]]:
    """Run `envplane ARGS` once, while the workspace's next operation is in its first step."""
    seen: list[subprocess.CompletedProcess[str]] = []

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted) and not seen:
            seen.append(project.run(*args))

    ws.events = sink
    return seen


def refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 3, result.stderr + result.stdout
    for word in words:
        assert word in result.stderr, result.stderr


def history(project: Project, env: str) -> list[dict[str, object]]:
    ops = project.json("history", env)
    assert isinstance(ops, list)
    return ops


def test_a_backup_holds_off_destroy_and_update_but_not_another_reader(
    ws: Workspace, project: Project
) -> None:
    conflicts: dict[str, subprocess.CompletedProcess[str]] = {}
    calls: list[tuple[str, Callable[[], subprocess.CompletedProcess[str]]]] = [
        ("destroy", lambda: project.run("destroy", "development", "--force")),
        ("backup", lambda: project.run("backup", "development", "--type", "config")),
    ]
    lock = threading.Lock()

    def sink(event: ev.Event) -> None:
        if isinstance(event, ev.StepStarted):  # steps run side by side: one call each
            with lock:
                name, call = calls.pop(0) if calls else ("", None)
            if call is not None:
                conflicts[name] = call()

    before = history(project, "development")
    ws.events = sink
    done = service.backup(ws, "development")
    assert done.result.manifest is not None and done.result.operation_id
    refused(conflicts["destroy"], "being read by", done.result.operation_id)
    assert conflicts["backup"].returncode == 0, conflicts["backup"].stderr  # readers share
    assert project.json("info", "development")["status"] == "ready"  # type: ignore[index]
    kinds = [op["kind"] for op in history(project, "development")]
    assert "destroy" not in kinds and kinds.count("backup") == 2
    assert len(kinds) == len(before) + 2  # the refused destroy recorded nothing


def test_a_clone_with_data_holds_its_source_until_the_copy_is_in(
    ws: Workspace, project: Project
) -> None:
    source_rows = seed(project, "development", rows=500)
    before = digest(project, "development", source_rows)
    seen = during_first_step(ws, project, "destroy", "development", "--force")
    outcome = service.clone(ws, "development", "dev-copy", with_data=True)
    assert outcome.applied
    refused(seen[0], "being read by", str(outcome.operations[0]))
    assert digest(project, "dev-copy") == before
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "ready"
    last = info["last_operation"]
    assert isinstance(last, dict) and last["kind"] == "create"  # not a failed destroy
    assert project.run("destroy", "dev-copy", "--force").returncode == 0


def test_a_restore_holds_off_a_backup_of_the_same_environment(
    ws: Workspace, project: Project
) -> None:
    made = service.backup(ws, "development")
    assert made.result.manifest is not None
    backup_id = made.result.manifest.backup_id
    # A data backup is refused anyway while the data is half-restored (the environment says
    # failed until it is back); a config-only backup meets the restore's lock.
    seen = during_first_step(ws, project, "backup", "development", "--type", "config")
    done = service.restore(ws, "development", backup_id, force=True)
    assert done.applied
    refused(seen[0], "locked by", done.operations[-1])


def test_a_refused_operation_records_nothing_on_the_environment(
    ws: Workspace, project: Project
) -> None:
    before = history(project, "development")
    op = ws.store.new_operation_id()
    ws.store.acquire_lock("development", op)  # held by this live test process
    try:
        result = project.run("destroy", "development", "--force")
        refused(result, "locked by", op)
    finally:
        ws.store.release_lock("development", op)
    assert history(project, "development") == before
    info = project.json("info", "development")
    assert isinstance(info, dict)
    assert info["last_operation"]["kind"] == "create"  # type: ignore[index]
    assert info["last_operation"]["status"] == "succeeded"  # type: ignore[index]
    assert any(a.action == "refused" for a in ws.store.audit_log("development"))


def test_a_killed_backup_is_journaled_and_cleaned_by_resume_or_the_next_backup(
    ws: Workspace, project: Project
) -> None:
    backups = project.home / "backups"
    for clean_with in (("resume",), ("backup", "development")):
        killed = project.run("backup", "development", ENVPLANE_FAULT_KILL_AFTER_STEP="1")
        assert killed.returncode == -9
        unfinished = [p for p in backups.iterdir() if not (p / "manifest.json").exists()]
        assert len(unfinished) == 1
        op = history(project, "development")[0]
        assert op["kind"] == "backup" and op["status"] == "running"
        args = ("resume", str(op["id"])) if clean_with == ("resume",) else clean_with
        again = project.run(*args)
        assert again.returncode == 0, again.stderr
        # The unfinished files are gone (a new backup may reuse the id within the second).
        assert all((p / "manifest.json").exists() for p in backups.iterdir())
        assert project.json("history", "development")[1]["status"] == "failed"  # type: ignore[index]


def test_a_failed_environment_is_not_backed_up_as_full_nor_restored_from_nothing(
    project: Project,
) -> None:
    assert project.run("create", "development").returncode == 0
    config_only = project.json("backup", "development", "--type", "config")
    assert isinstance(config_only, dict)
    project.edit_matrix("replicas: 1\n    env: {}", "replicas: 2\n    env: {}")
    killed = project.run("update", "development", ENVPLANE_FAULT_KILL_AFTER_STEP="1")
    assert killed.returncode == -9
    # The killed update left the environment "updating"; a failed resume would say failed:
    # either way it is not ready, and a full backup of it is refused, naming the way out.
    full = project.run("backup", "development")
    assert full.returncode == 2 and "--type config" in full.stderr, full.stderr
    assert project.run("backup", "development", "--type", "config").returncode == 0
    restored = project.run("restore", "development", str(config_only["backup_id"]), "--force")
    assert restored.returncode == 2 and "holds no data" in restored.stderr, restored.stderr


def test_a_killed_data_sync_is_journaled_from_its_first_copy_and_resumed_clean(
    project: Project,
) -> None:
    assert project.run("create", "development").returncode == 0
    assert project.run("clone", "development", "dev-copy").returncode == 0
    rows = seed(project, "development", rows=300)
    before = digest(project, "development", rows)
    killed = project.run(
        "sync", "development", "dev-copy", "--type", "data", ENVPLANE_FAULT_KILL_AFTER_STEP="1"
    )
    assert killed.returncode == -9
    op = history(project, "dev-copy")[0]
    assert op["kind"] == "sync" and op["status"] == "running"
    assert list(project.home.glob("environments/.dev-copy.*"))  # the copies it had made
    resumed = project.run("resume", str(op["id"]))
    assert resumed.returncode == 0, resumed.stderr
    assert digest(project, "dev-copy") == before
    assert not list(project.home.glob("environments/.dev-copy.*"))
    assert project.run("destroy", "dev-copy", "--force").returncode == 0
