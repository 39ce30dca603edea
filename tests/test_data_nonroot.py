"""envplane run by an ordinary user (no user switching): every program runs as that user, and
a backup, a restore and a clone with data work as they do under root. As root, the tests run
the CLI as `nobody`; run as another user, the whole suite already is this test."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE, Project, open_tmpdir
from tests.datakit import digest, mutate, seed
from tests.support import teardown_project

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run the CLI as another user"),
]


@pytest.fixture
def user_project() -> Iterator[Project]:
    nobody = pwd.getpwnam("nobody")
    base = open_tmpdir("envplane-user-")
    shutil.copytree(EXAMPLE, base / "sunday", ignore=shutil.ignore_patterns("__pycache__"))
    (base / "home").mkdir(mode=0o700)
    os.chown(base / "home", nobody.pw_uid, nobody.pw_gid)
    proj = Project(base / "sunday", base / "home", (nobody.pw_uid, nobody.pw_gid))
    try:
        yield proj
    finally:
        teardown_project(proj)
        shutil.rmtree(base, ignore_errors=True)


def _give_back(project: Project, root: Path) -> None:
    assert project.user is not None
    for path in [root, *root.rglob("*")]:
        os.chown(path, *project.user)


def test_backup_restore_and_clone_as_an_ordinary_user(user_project: Project) -> None:
    project = user_project
    created = project.run("create", "development")
    assert created.returncode == 0, created.stderr
    uid = project.user[0] if project.user else -1
    datadir = project.home / "environments" / "development" / "data" / "postgres"
    assert datadir.stat().st_uid == uid  # made and run by that user, nobody switched to
    u = seed(project, "development", rows=2000)
    _give_back(project, u.storage)  # the objects the test wrote as root: the user's, as an app's
    before = digest(project, "development", u)

    backup = project.json("backup", "development")
    assert isinstance(backup, dict)
    mutate(project, "development", u)
    _give_back(project, u.storage)
    restored = project.run("restore", "development", backup["backup_id"], "--force")
    assert restored.returncode == 0, restored.stderr
    assert digest(project, "development", u) == before
    assert datadir.stat().st_uid == uid

    cloned = project.run("clone", "development", "dev-copy", "--with-data")
    assert cloned.returncode == 0, cloned.stderr
    assert digest(project, "dev-copy") == before
    for env in ("dev-copy", "development"):
        gone = project.run("destroy", env, "--force")
        assert gone.returncode == 0 and "verified" in gone.stdout, gone.stderr
