"""A team's setup: the state store in a real PostgreSQL server (ENVPLANE_DATABASE_URL).

Two operators (two ENVPLANE_HOMEs, one database and one shared secret key) see one truth:
what one creates, the other lists, and the other's create of the same name is refused.
"""

from __future__ import annotations

import base64
import os
import shutil

from tests.conftest import Project, open_tmpdir
from tests.pgserver import fresh_database_fixture, postgres_url_fixture  # noqa: F401
from tests.support import SMALL_MATRIX


def test_create_list_destroy_with_postgresql_state(project: Project, fresh_database: str) -> None:
    project.matrix.write_text(SMALL_MATRIX)
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()
    shared = {"ENVPLANE_DATABASE_URL": fresh_database, "ENVPLANE_SECRET_KEY": key}
    created = project.run("create", "prod-like", **shared)
    assert created.returncode == 0, created.stderr
    assert not (project.home / "state.db").exists()  # nothing went to the SQLite default

    other_home = open_tmpdir("envplane-operator2-")
    try:
        second = Project(root=project.root, home=other_home)
        listed = second.run("list", "-o", "json", **shared)
        assert listed.returncode == 0, listed.stderr
        assert '"status": "ready"' in listed.stdout
        again = second.run("create", "prod-like", **shared)
        assert again.returncode == 2 and "already exists" in again.stderr
    finally:
        shutil.rmtree(other_home, ignore_errors=True)

    destroyed = project.run("destroy", "prod-like", "--force", **shared)
    assert destroyed.returncode == 0, destroyed.stderr
    history = project.run("history", "prod-like", "-o", "json", **shared)
    assert history.returncode == 0 and history.stdout.count('"succeeded"') == 2
