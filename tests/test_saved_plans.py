"""`envplane plan ENV --save|--out FILE` then `envplane apply PLAN`: exactly the plan shown, or
refused (exit 3) when the matrix or the environment changed since; never applied twice."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.slow


def _saved(project: Project, *args: str) -> dict[str, object]:
    doc = project.json("plan", "development", "--save", *args)
    assert isinstance(doc, dict) and str(doc["plan_id"]).startswith("plan-")
    return doc


def test_saved_create_plan_applies_with_the_ports_it_showed(project: Project) -> None:
    planned = _saved(project)
    assert planned["operation"] == "create"
    assert project.json("list")[0]["status"] == "not created"  # type: ignore[index]
    applied = project.run("apply", str(planned["plan_id"]))
    assert applied.returncode == 0, applied.stderr
    assert "applied development" in applied.stdout
    # The ports the plan allocated are the ones the environment got (one plan, one set of
    # allocations; a second plan would have picked other free ports).
    from envplane.state.store import StateStore

    store = StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home)
    try:
        saved = store.get_plan(str(planned["plan_id"]))
        record = store.get_environment("development")
        assert saved is not None and record is not None
        assert saved.request["ports"] and record.ports == saved.request["ports"]
    finally:
        store.close()
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "ready"
    again = project.run("apply", str(planned["plan_id"]))
    assert again.returncode == 2 and "applied already" in again.stderr
    # An update plan saved now says there is nothing to do, and applying it changes nothing.
    nothing = _saved(project)
    assert nothing["operation"] == "update"
    assert all(s["action"] == "noop" for s in nothing["steps"])  # type: ignore[union-attr]
    done = project.run("apply", str(nothing["plan_id"]))
    assert done.returncode == 0 and "No changes" in done.stdout, done.stderr


def test_a_plan_made_stale_by_the_matrix_is_refused_and_changes_nothing(
    project: Project,
) -> None:
    assert project.run("create", "development").returncode == 0
    project.edit_matrix("replicas: 1\n    env: {}", "replicas: 2\n    env: {}")
    plan_file = project.root / "update.plan.json"
    saved = project.run("plan", "development", "--out", str(plan_file))
    assert saved.returncode == 0, saved.stderr
    doc = json.loads(plan_file.read_text())
    assert doc["format"] == "envplane-plan/1" and doc["operation"] == "update"
    changed = [s["resource"] for s in doc["steps"] if s["action"] == "update"]
    assert changed, doc
    project.edit_matrix("replicas: 2\n    env: {}", "replicas: 3\n    env: {}")
    before = project.json("history", "development")
    refused = project.run("apply", str(plan_file))
    assert refused.returncode == 3, refused.stderr
    assert "stale" in refused.stderr and "plan again" in refused.stderr
    assert project.json("history", "development") == before  # no operation was started
    # Planned again, it applies.
    fresh = project.json("plan", "development", "--save")
    assert isinstance(fresh, dict)
    applied = project.run("apply", str(fresh["plan_id"]))
    assert applied.returncode == 0, applied.stderr
    services = project.json("info", "development")["services"]  # type: ignore[index]
    assert services["backend"]["desired"] == 3


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        ("plan-20260101-0000-abcdef", "no saved plan"),
        ("nonsense", "neither a plan id nor a plan file"),
        ("{matrix}", "not a plan file"),
    ],
)
def test_bad_plan_references_are_refused(project: Project, ref: str, text: str) -> None:
    # A file that exists but is not a plan: the matrix itself (an absolute
    # path, so the case does not depend on the directory the tests run from).
    ref = ref.format(matrix=project.matrix)
    result = project.run("apply", ref)
    assert result.returncode == 2, result.stderr
    assert text in result.stderr and "Traceback" not in result.stderr


def test_a_dry_run_points_at_the_saved_plan_that_keeps_its_ports(project: Project) -> None:
    dry = project.run("create", "development", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "envplane plan development --save" in dry.stdout
    assert "envplane apply" in dry.stdout
