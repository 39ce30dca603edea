"""One approval rule for every operation that replaces or removes an approval_required
environment's data (destroy, restore, sync of data); a dry run is never refused."""

from __future__ import annotations

import pytest

from tests.conftest import Project
from tests.support import SMALL_MATRIX

pytestmark = pytest.mark.slow


def test_restore_destroy_and_dry_runs_of_an_approval_environment(project: Project) -> None:
    project.matrix.write_text(SMALL_MATRIX)
    assert project.run("create", "prod-like").returncode == 0
    made = project.json("backup", "prod-like")
    assert isinstance(made, dict)
    backup_id = str(made["backup_id"])

    # Typing the name at the prompt is not an approval: --force is.
    refused = project.run("restore", "prod-like", backup_id, input="prod-like\n")
    assert refused.returncode == 3, refused.stderr
    assert "requires approval" in refused.stderr and "--force" in refused.stderr
    ops = project.json("history", "prod-like")
    assert isinstance(ops, list) and all(op["kind"] != "restore" for op in ops)

    shown = project.run("restore", "prod-like", backup_id, "--dry-run")
    assert shown.returncode == 0, shown.stderr
    assert "Restore prod-like from" in shown.stdout

    forced = project.run("restore", "prod-like", backup_id, "--force")
    assert forced.returncode == 0, forced.stderr
    audit_actions = [line for line in forced.stdout.splitlines() if "restored" in line]
    assert audit_actions

    dry = project.run("destroy", "prod-like", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "storage/" in dry.stdout  # the plan is shown
    assert project.json("info", "prod-like")["status"] == "ready"  # type: ignore[index]

    refused_destroy = project.run("destroy", "prod-like", input="prod-like\n")
    assert refused_destroy.returncode == 3 and "--force" in refused_destroy.stderr
    assert project.run("destroy", "prod-like", "--force").returncode == 0
