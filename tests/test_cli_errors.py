"""Bad input gets a clear, located error, the right exit code, no traceback and no change."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Project
from tests.support import SMALL_MATRIX


def _no_traceback(result: object) -> None:
    text = getattr(result, "stdout", "") + getattr(result, "stderr", "")
    assert "Traceback" not in text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["create", "Bad_Name"], "invalid environment name"),
        (["create", "developmnt"], "development"),  # did-you-mean
        (["plan", "x"], "invalid environment name"),
        (["info", "no-such-env"], "no-such-env"),
        (["destroy", "development", "--force"], "does not exist"),
        (["create", "development", "--template", "../etc"], "template"),
        (["create", "development", "--template", "nosuch"], "nosuch"),
        (["resume", "op-nothing"], "no operation"),
        (["update", "development"], "does not exist"),
    ],
)
def test_bad_arguments_exit_2_and_change_nothing(
    project: Project, args: list[str], needle: str
) -> None:
    result = project.run(*args)
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert needle in result.stderr
    _no_traceback(result)
    env_root = project.home / "environments"
    assert not env_root.exists() or not any(env_root.iterdir())


def test_broken_matrix_is_located(project: Project) -> None:
    project.edit_matrix("min_size: 3\n", "min_size: 30\n")
    result = project.run("check")
    assert result.returncode == 2
    assert "environment-matrix.yaml:" in result.stderr
    assert "min_size" in result.stderr
    _no_traceback(result)
    created = project.run("create", "development")
    assert created.returncode == 2  # a broken matrix blocks every command that reads it


def test_an_error_at_line_100_keeps_its_line_number(project: Project) -> None:
    """Rich turns ":100:" into an emoji unless told not to; a location must print as is."""
    lines = project.matrix.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("iam_roles:"))
    padding = ["# padding\n"] * (98 - at)  # the duplicate key lands on line 100
    lines[at + 1 : at + 1] = [*padding, lines[at]]
    project.matrix.write_text("".join(lines))
    result = project.run("check")
    assert result.returncode == 2, result.stderr
    assert "environment-matrix.yaml:100: " in result.stderr, result.stderr
    assert "duplicate key 'iam_roles'" in result.stderr


def test_check_passes_on_the_example(project: Project) -> None:
    result = project.run("check")
    assert result.returncode == 0, result.stderr
    assert "3 environment(s)" in result.stdout


def test_missing_placeholder_names_template_line(project: Project) -> None:
    tpl = project.root / "templates" / "environments" / "development" / "config.yaml"
    tpl.write_text(tpl.read_text().replace("{{VERSION}}", "{{RELEASE_TAG}}"))
    result = project.run("check")
    assert result.returncode == 2
    assert "config.yaml:" in result.stderr and "RELEASE_TAG" in result.stderr


def test_destroy_refuses_approval_required_without_force(project: Project) -> None:
    project.matrix.write_text(SMALL_MATRIX)
    assert project.run("create", "prod-like").returncode == 0
    refused = project.run("destroy", "prod-like")
    assert refused.returncode == 3
    assert "approval" in refused.stderr
    assert project.json("info", "prod-like")["status"] == "ready"  # type: ignore[index]
    assert project.run("destroy", "prod-like", "--force").returncode == 0


def test_destroy_asks_for_the_name(project: Project) -> None:
    project.matrix.write_text(
        SMALL_MATRIX.replace("approval_required: true", "approval_required: false")
    )
    assert project.run("create", "prod-like").returncode == 0
    wrong = project.run("destroy", "prod-like", input="prod\n")
    assert wrong.returncode == 2
    assert project.json("info", "prod-like")["status"] == "ready"  # type: ignore[index]
    right = project.run("destroy", "prod-like", input="prod-like\n")
    assert right.returncode == 0, right.stderr
    assert project.json("info", "prod-like")["status"] == "destroyed"  # type: ignore[index]


def test_lock_held_blocks_with_exit_3_naming_the_holder(project: Project) -> None:
    project.matrix.write_text(SMALL_MATRIX)
    from envplane.state.store import StateStore

    project.home.mkdir(parents=True, exist_ok=True)
    store = StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home)
    try:
        op = store.start_operation("prod-like", "create", {})
        store.acquire_lock("prod-like", op.id)  # held by this live test process
        blocked = project.run("create", "prod-like")
        assert blocked.returncode == 3, blocked.stderr
        assert op.id in blocked.stderr
        store.release_lock("prod-like", op.id)
    finally:
        store.close()
    assert project.run("create", "prod-like").returncode == 0


def test_help_lists_commands_and_exit_codes() -> None:
    import subprocess

    from tests.conftest import ENVPLANE

    result = subprocess.run(
        [ENVPLANE, "--help"], capture_output=True, text=True, env=dict(os.environ)
    )
    assert result.returncode == 0
    for word in ("create", "destroy", "plan", "validate", "resume", "Exit codes"):
        assert word in result.stdout


def test_plan_and_dry_run_change_nothing(project: Project) -> None:
    plan = project.run("plan", "development")
    assert plan.returncode == 0, plan.stderr
    assert "8 to create" in plan.stdout
    dry = project.run("create", "development", "--dry-run")
    assert dry.returncode == 0 and "+ postgres/postgres" in dry.stdout
    assert not (project.home / "environments").exists()
    listed = project.json("list")
    assert all(e["status"] == "not created" for e in listed)  # type: ignore[union-attr]
    assert project.json("history") == []


def test_destroy_works_from_the_store_when_the_matrix_no_longer_names_it(
    project: Project,
) -> None:
    project.matrix.write_text(
        SMALL_MATRIX.replace("approval_required: true", "approval_required: false")
    )
    assert project.run("create", "prod-like").returncode == 0
    project.matrix.write_text(SMALL_MATRIX.replace("prod-like", "other-env"))
    listed = project.json("list")
    assert {e["name"]: e["status"] for e in listed} == {  # type: ignore[union-attr]
        "other-env": "not created",
        "prod-like": "ready",
    }
    destroyed = project.run("destroy", "prod-like", "--force")
    assert destroyed.returncode == 0, destroyed.stderr
    assert not (project.home / "environments" / "prod-like").exists()
