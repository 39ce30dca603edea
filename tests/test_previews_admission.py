"""Previews created at once count each other: the quota check and the preview's record are one
step under the store-wide admission lock (previews/quotas.py), and a preview recorded a moment
ago whose environment is still being made counts (and is not closed by someone's `list`)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest

from envplane.errors import LockHeld
from envplane.previews.quotas import ADMISSION_LOCK, CREATING, admission, live_previews
from envplane.state.base import now
from envplane.state.store import StateStore
from envplane.workspace import Workspace
from tests.conftest import ENVPLANE, Project


def _store(project: Project) -> StateStore:
    project.home.mkdir(parents=True, exist_ok=True)
    return StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home)


def test_a_create_waits_for_another_admission_and_then_counts_it(project: Project) -> None:
    project.edit_matrix("    max_previews: 10", "    max_previews: 1")
    with _store(project) as store:
        store.acquire_named_lock(ADMISSION_LOCK, "op-other-create")
        second = subprocess.Popen(
            [ENVPLANE, "-f", str(project.matrix), "preview", "create", "--branch", "fix/two"],
            env=project.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(3)  # long enough for it to reach the quota check, were it not waiting
            assert second.poll() is None, second.communicate()
            # What the other create does while it holds the admission: its preview recorded.
            store.record_preview(
                "pr-one", branch="one", source="staging", expires_at=now() + timedelta(hours=1)
            )
        finally:
            store.release_named_lock(ADMISSION_LOCK, "op-other-create")
        out, err = second.communicate(timeout=60)
    assert second.returncode == 3, (out, err)
    assert "previews.quotas.max_previews" in err and "pr-one (" in err, err
    assert not (project.home / "environments").exists() or not any(
        (project.home / "environments").iterdir()
    )  # the refused create made nothing


def test_the_admission_of_a_create_that_died_is_taken_over(project: Project) -> None:
    url = f"sqlite:///{project.home / 'state.db'}"
    holder = (
        "import sys, time\n"
        "from envplane.state.store import StateStore\n"
        "store = StateStore.open(sys.argv[1], sys.argv[2])\n"
        f"store.acquire_named_lock({ADMISSION_LOCK!r}, 'op-dead')\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    with _store(project) as store:
        other = subprocess.Popen(
            [sys.executable, "-c", holder, url, str(project.home)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert other.stdout is not None and other.stdout.readline().strip() == "held"
            with pytest.raises(LockHeld) as held:
                store.acquire_named_lock(ADMISSION_LOCK, "op-mine")
            assert "op-dead" in held.value.holder
        finally:
            other.kill()
            other.wait()
        store.acquire_named_lock(ADMISSION_LOCK, "op-mine")  # its holder died: taken over
        # No environment's lock is the admission's, even one named like it.
        store.acquire_lock("previews", "op-env")
        store.release_named_lock(ADMISSION_LOCK, "op-mine")
        store.acquire_named_lock(ADMISSION_LOCK, "op-again")
        store.release_named_lock(ADMISSION_LOCK, "op-again")
        store.release_lock("previews", "op-env")


def test_a_preview_being_created_counts_and_a_dead_create_stops_counting(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVPLANE_HOME", str(project.home))
    monkeypatch.delenv("ENVPLANE_DATABASE_URL", raising=False)
    ws = Workspace.from_matrix(project.matrix)
    with admission(ws):
        ws.store.record_preview(
            "pr-new", branch="new", source="staging", expires_at=now() + timedelta(hours=1)
        )
    # Its environment is not recorded yet: still live for quotas and `preview list`.
    assert [p.env for p in live_previews(ws)] == ["pr-new"]
    assert [p.env for p in live_previews(ws)] == ["pr-new"]  # and not closed by looking
    ws.store.record_preview(
        "pr-dead", branch="dead", source="staging", expires_at=now() + timedelta(hours=1)
    )
    with ws.store._write() as s:  # a create that died long ago, before its environment
        from envplane.state.previews import PreviewRow

        row = s.get(PreviewRow, "pr-dead")
        assert row is not None
        row.created_at = now() - CREATING - timedelta(minutes=1)
    assert [p.env for p in live_previews(ws)] == ["pr-new"]
    assert ws.store.get_preview("pr-dead").ended_at is not None  # type: ignore[union-attr]
    ws.store.close()


def test_the_cloud_is_searched_for_orphans_after_its_last_environment_was_destroyed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine whose only cloud environment was destroyed can still hold its leftovers (here
    a Terraform working directory with a state): gc asks every target an environment was ever
    made on, destroyed ones included."""
    monkeypatch.setenv("ENVPLANE_HOME", str(project.home))
    monkeypatch.delenv("ENVPLANE_DATABASE_URL", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(project.home / "no-such-kubeconfig"))
    ws = Workspace.from_matrix(project.matrix)
    ws.store.save_environment("cloudy", target="cloud", status="ready")
    ws.store.save_environment("cloudy", status="destroyed")
    workdir = project.home / "environments" / "cloudy" / "terraform"
    workdir.mkdir(parents=True)
    (workdir / "terraform.tfstate").write_text('{"version": 4, "resources": []}\n')
    from envplane.previews.orphans import find_orphans

    [orphan] = find_orphans(ws)
    assert orphan.name == "cloudy" and orphan.exists
    kinds = [(target, thing.kind) for target, thing in orphan.elsewhere]
    assert kinds == [("cloud", "terraform-state")], orphan.lines()
    ws.store.close()
