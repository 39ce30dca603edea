"""Releases that migrate data, on a real staging environment (PostgreSQL, Redis, nginx, two
backend replicas): the deploy takes a backup before the migration runs, a rollback asks what
happens to the data, `--with-data` brings back the pre-deploy data (by content digest) and
names what was written since, `--keep-data` keeps the migrated data."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import Project
from tests.datakit import pg_digest, urls
from tests.loadgen import Load
from tests.test_delivery_traffic import backend, make_staging, release, status

pytestmark = pytest.mark.slow

MIGRATING = '      "1.1.0": {migrate: ["{python}", "app/backend.py", "migrate"]}\n'


def add_item(frontend: str, name: str) -> None:
    body = json.dumps({"name": name}).encode()
    request = urllib.request.Request(
        frontend.rstrip("/") + "/api/items",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 201


def items_columns(postgres: str) -> list[str]:
    import psycopg

    with psycopg.connect(postgres) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'items' ORDER BY ordinal_position"
        ).fetchall()
    return [str(r[0]) for r in rows]


def under_traffic(project: Project, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run an envplane command while the frontend takes steady requests (the analysis
    after a switch judges real traffic)."""
    with Load(url, rate=80, max_seconds=200, max_requests=80 * 200):
        return project.run(*args, timeout=200)


def test_migrate_then_rollback_with_data_restores_and_keep_data_keeps(project: Project) -> None:
    project.edit_matrix('      "1.1.0": {}\n', MIGRATING)
    info_url = make_staging(project)
    where = urls(project, "staging")
    for name in ("alpha", "beta", "gamma"):
        add_item(where.frontend, name)
    before = pg_digest(where.postgres)
    assert "tag" not in items_columns(where.postgres)
    rel = release(project, "1.1.0")

    # Blue-green: the migration runs before the new color takes traffic, a backup first.
    deployed = under_traffic(
        project, info_url, "deploy", "staging", rel, "--strategy", "blue_green", "-o", "json"
    )
    assert deployed.returncode == 0, deployed.stderr
    assert "taken before the migration" in deployed.stderr
    assert "tag" in items_columns(where.postgres)
    migrated = pg_digest(where.postgres)
    assert migrated["public.items"] != before["public.items"]
    last = status(project)["last_rollouts"][0]  # type: ignore[index]
    backup_id = str(last["detail"]["backup_id"])
    listed = project.json("backups", "staging")
    assert backup_id in json.dumps(listed)
    add_item(where.frontend, "written-after-the-deploy")
    time.sleep(1.5)  # PostgreSQL flushes its write counters within about a second

    # Without a choice, a rollback over a migration is refused and changes nothing.
    asked = project.run("rollback", "staging")
    assert asked.returncode == 3, asked.stderr
    assert "--with-data" in asked.stderr and "--keep-data" in asked.stderr
    assert backend(project)["version"] == "1.1.0"

    # --with-data within the scale-down delay: the data comes back, then the switch.
    back = project.run("rollback", "staging", "--with-data", "-o", "json", timeout=240)
    assert back.returncode == 0, back.stderr
    said = json.loads(back.stdout)["messages"]
    assert f"data restored from backup {backup_id}" in said
    assert any("lost" in m and "public.items" in m for m in said)  # what was written since
    assert backend(project)["version"] == "1.0.0"
    assert pg_digest(where.postgres) == before
    assert "tag" not in items_columns(where.postgres)

    # Rolling this time; --keep-data rolls back the code only.
    again = under_traffic(project, info_url, "deploy", "staging", rel, "-o", "json")
    assert again.returncode == 0, again.stderr
    migrated_again = pg_digest(where.postgres)
    assert "tag" in items_columns(where.postgres)
    kept = project.run("rollback", "staging", "--keep-data", "-o", "json", timeout=240)
    assert kept.returncode == 0, kept.stderr
    assert backend(project)["version"] == "1.0.0"
    assert pg_digest(where.postgres) == migrated_again
    info = project.json("info", "staging")
    assert isinstance(info, dict)
    assert info["services"]["backend"]["version"] == "1.0.0"
    assert info["release"] == status(project)["release"]
    shown = project.run("info", "staging")
    assert "1/1 ok  1.0.0" in shown.stdout or "2/2 ok  1.0.0" in shown.stdout, shown.stdout

    # The code rolled back is what a user checks too: the old version answers, on the data.
    with urllib.request.urlopen(where.frontend.rstrip("/") + "/api/items", timeout=5) as got:
        names = [row["name"] for row in json.loads(got.read())]
    assert names[:3] == ["alpha", "beta", "gamma"]


def test_a_failing_migration_takes_no_traffic_and_changes_nothing(project: Project) -> None:
    project.edit_matrix(
        '      "1.1.0": {}\n',
        '      "1.1.0": {migrate: ["{python}", "-c", "raise SystemExit(\'schema refused\')"]}\n',
    )
    make_staging(project)
    rel = release(project, "1.1.0")
    failed = project.run("deploy", "staging", rel, timeout=240)
    assert failed.returncode == 1, failed.stderr
    assert "schema refused" in failed.stderr
    assert backend(project)["version"] == "1.0.0"
    assert status(project)["in_flight"] is None
