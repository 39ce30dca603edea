"""backup / restore of a real environment: round trip by content, damaged backups refused with
the environment untouched, a wrong key, crashes mid-backup and mid-restore, retention."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from envplane.targets.local.pgcluster import major as pg_major
from tests.conftest import Project
from tests.datakit import digest, mutate, seed

pytestmark = pytest.mark.slow


def _backup(project: Project, env: str = "development", *args: str, **extra: str) -> dict:  # type: ignore[type-arg]
    result = project.run("backup", env, *args, "-o", "json", **extra)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


def _flip_byte(path: Path, original: bytes, spot: int) -> None:
    path.write_bytes(original[:spot] + bytes([original[spot] ^ 0x01]) + original[spot + 1 :])


def test_round_trip_restores_every_byte(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    u = seed(project, "development")
    before = digest(project, "development", u)

    manifest = _backup(project)
    assert manifest["backup_id"].startswith("backup-development-")
    assert manifest["source_environment"] == "development"
    assert manifest["backup_type"] == "full"
    assert manifest["encryption"]["algorithm"]  # development has kms_encryption: basic
    names = [c["name"] for c in manifest["components"]]
    assert names == ["config", "postgres", "redis", "storage"]
    folder = Path(manifest["path"])
    for comp in manifest["components"]:
        stored = folder / comp["file"]
        assert stored.stat().st_size == comp["bytes"] and len(comp["sha256"]) == 64
    key = project.home / "keys" / "backup.key"
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent != folder.parent
    pg = next(c for c in manifest["components"] if c["name"] == "postgres")
    assert pg["format"] == "pg_basebackup tar+lz4" and pg["file"] == "postgres.base.tar.lz4.enc"
    assert pg["details"] == {"postgres_major": pg_major(), "database": "sunday_development"}
    # Encrypted at rest: no table content is readable in the files.
    assert b"@example.com" not in (folder / pg["file"]).read_bytes()

    listed = project.json("backups", "development")
    assert isinstance(listed, list) and [b["backup_id"] for b in listed] == [manifest["backup_id"]]

    mutate(project, "development", u)
    assert digest(project, "development", u) != before

    plan = project.run("restore", "development", manifest["backup_id"], "--dry-run")
    assert plan.returncode == 0 and "restore postgres" in plan.stdout
    refused = project.run("restore", "development", manifest["backup_id"], input="nope\n")
    assert refused.returncode == 2 and "nothing was restored" in refused.stderr
    done = project.run("restore", "development", manifest["backup_id"], input="development\n")
    assert done.returncode == 0, done.stderr + done.stdout
    assert digest(project, "development", u) == before
    info = project.json("info", "development")
    assert isinstance(info, dict)
    assert info["status"] == "ready" and info["services"]["backend"]["healthy"] is True


def test_damaged_backup_is_refused_and_nothing_changes(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    u = seed(project, "development", rows=2000)
    manifest = _backup(project)
    mutate(project, "development", u)
    after_change = digest(project, "development", u)
    folder = Path(manifest["path"])
    for comp in manifest["components"]:
        path = folder / comp["file"]
        original = path.read_bytes()
        _flip_byte(path, original, len(original) // 2)
        result = project.run("restore", "development", manifest["backup_id"], "--force")
        assert result.returncode == 1, (comp["name"], result.stderr)
        assert "damaged" in result.stderr and comp["name"] in result.stderr
        assert digest(project, "development", u) == after_change
        if comp["name"] == "postgres":
            path.write_bytes(original[:-1])  # truncated: refused too
            result = project.run("restore", "development", manifest["backup_id"], "--force")
            assert result.returncode == 1 and "damaged" in result.stderr
        path.write_bytes(original)
    ops = project.json("history", "development")
    assert isinstance(ops, list) and all(o["kind"] != "restore" for o in ops)
    (folder / "redis.rdb.enc").unlink()  # incomplete
    result = project.run("restore", "development", manifest["backup_id"], "--force")
    assert result.returncode == 1 and "missing" in result.stderr
    assert digest(project, "development", u) == after_change

    # A backup made with a key from ENVPLANE_BACKUP_KEY needs that key back.
    key = "k" * 20
    manifest = _backup(project, "development", "--type", "data", ENVPLANE_BACKUP_KEY=key)
    assert [c["name"] for c in manifest["components"]] == ["postgres", "redis", "storage"]
    wrong = project.run(
        "restore", "development", manifest["backup_id"], "--force", ENVPLANE_BACKUP_KEY="x" * 20
    )
    assert wrong.returncode == 1
    assert "another key" in wrong.stderr and "ENVPLANE_BACKUP_KEY" in wrong.stderr
    assert digest(project, "development", u) == after_change
    right = project.run(
        "restore", "development", manifest["backup_id"], "--force", ENVPLANE_BACKUP_KEY=key
    )
    assert right.returncode == 0, right.stderr
    assert digest(project, "development", u) == after_change  # the state it was backed up in


def test_killed_restore_is_failed_then_resumed(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    u = seed(project, "development", rows=2000)
    before = digest(project, "development", u)
    manifest = _backup(project)
    mutate(project, "development", u)
    killed = project.run(
        "restore",
        "development",
        manifest["backup_id"],
        "--force",
        ENVPLANE_FAULT_KILL_AFTER_STEP="2",
    )
    assert killed.returncode == -9
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "failed"
    ops = project.json("history", "development")
    assert isinstance(ops, list)
    op = ops[0]
    assert op["kind"] == "restore" and op["status"] == "running"
    resumed = project.run("resume", op["id"])
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    assert digest(project, "development", u) == before
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "ready"


def test_restore_recreates_a_destroyed_environment(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    seed(project, "development", rows=2000)
    before = digest(project, "development")
    manifest = _backup(project)
    assert project.run("destroy", "development", "--force").returncode == 0
    done = project.run(
        "restore", "development", manifest["backup_id"]
    )  # no prompt: nothing to lose
    assert done.returncode == 0, done.stderr
    assert digest(project, "development") == before


def test_bad_arguments(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    manifest = _backup(project, "development", "--type", "config")
    assert [c["name"] for c in manifest["components"]] == ["config"]
    bid = manifest["backup_id"]
    cases = [
        (("backup", "nosuchenv"), 2, "nosuchenv"),
        (("backup", "staging"), 2, "has not been created"),
        (("backup", "development", "--type", "everything"), 2, "everything"),
        (("backup", "development", "--type", "config", "--logical"), 2, "holds none"),
        (("backup", "Bad_Name"), 2, "invalid environment name"),
        (("backups", "nosuchenv"), 2, "nosuchenv"),
        (
            ("restore", "development", "backup-development-20200101-000000", "--force"),
            2,
            "no backup",
        ),
        (("restore", "development", "../etc", "--force"), 2, "invalid backup id"),
        (("restore", "staging", bid, "--force"), 2, "--from-env development"),
        (("restore", "staging", bid, "--from-env", "production", "--force"), 2, "not 'production'"),
        (("restore", "nosuchenv", bid, "--force"), 2, "nosuchenv"),
        (("backup", "development", "--to", "ftp://x"), 2, "s3://"),
    ]
    for args, code, text in cases:
        result = project.run(*args)
        assert result.returncode == code, (args, result.stderr)
        assert text in result.stderr, (args, result.stderr)
    assert [b["backup_id"] for b in project.json("backups")] == [bid]  # type: ignore[union-attr]


def test_killed_backup_is_never_listed_and_prune_keeps_retention(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    killed = project.run("backup", "development", ENVPLANE_FAULT_KILL_AFTER_STEP="2")
    assert killed.returncode == -9
    leftovers = list((project.home / "backups").iterdir())
    assert len(leftovers) == 1 and not (leftovers[0] / "manifest.json").exists()
    assert project.json("backups") == []
    result = project.run("restore", "development", leftovers[0].name, "--force")
    assert result.returncode == 2 and "no backup" in result.stderr
    shutil.rmtree(leftovers[0])

    old = _backup(project, "development", "--type", "config")
    new = _backup(project, "development", "--type", "config")
    assert old["backup_id"] != new["backup_id"]  # two in one second get distinct ids
    path = Path(old["path"]) / "manifest.json"
    data = json.loads(path.read_text())
    data["created_at"] = (datetime.now(UTC) - timedelta(days=4)).isoformat(timespec="seconds")
    path.write_text(json.dumps(data))  # development keeps backups 3 days

    dry = project.run("backups", "prune", "--dry-run")
    assert dry.returncode == 0 and f"would remove {old['backup_id']}" in dry.stdout
    assert len(project.json("backups")) == 2  # type: ignore[arg-type]
    pruned = project.run("backups", "prune", "development")
    assert pruned.returncode == 0 and f"removed {old['backup_id']}" in pruned.stdout
    assert [b["backup_id"] for b in project.json("backups")] == [new["backup_id"]]  # type: ignore[union-attr]


def test_logical_backup_and_restore_into_another_environment(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    assert project.run("create", "staging").returncode == 0
    u = seed(project, "development", rows=2000)
    before = digest(project, "development", u)
    physical = _backup(project, "development", "--type", "data")
    logical = _backup(project, "development", "--type", "data", "--logical")
    pg = next(c for c in logical["components"] if c["name"] == "postgres")
    assert pg["format"] == "pg_dump custom" and pg["file"] == "postgres.dump.enc"
    listed = project.run("backups", "development").stdout
    assert f"physical (PG {pg_major()})" in listed and "logical" in listed

    # A physical copy of development's cluster becomes staging's, under staging's names: its
    # database, and its app role's own password (the backend connects and is healthy).
    into = project.run(
        "restore", "staging", physical["backup_id"], "--from-env", "development", "--force"
    )
    assert into.returncode == 0, into.stderr
    assert digest(project, "staging") == before
    info = project.json("info", "staging")
    assert isinstance(info, dict) and info["status"] == "ready"
    assert info["endpoints"]["postgres"].endswith("/sunday_staging")
    assert all(s["healthy"] for s in info["services"].values())

    mutate(project, "development", u)
    done = project.run("restore", "development", logical["backup_id"], "--force")
    assert done.returncode == 0, done.stderr
    assert digest(project, "development", u) == before

    # A physical backup only starts on the PostgreSQL major it was taken with.
    mutate(project, "development", u)
    changed = digest(project, "development", u)
    path = Path(physical["path"]) / "manifest.json"
    data = json.loads(path.read_text())
    for comp in data["components"]:
        if comp["name"] == "postgres":
            comp["details"]["postgres_major"] = "9"
    path.write_text(json.dumps(data))
    refused = project.run("restore", "development", physical["backup_id"], "--force")
    assert refused.returncode == 2, refused.stderr
    assert "PostgreSQL 9 cluster" in refused.stderr and "--logical" in refused.stderr
    assert digest(project, "development", u) == changed
    # A database name that is not an identifier never reaches SQL.
    for comp in data["components"]:
        if comp["name"] == "postgres":
            comp["details"] = {"postgres_major": pg_major(), "database": 'x"; DROP ROLE app; --'}
    path.write_text(json.dumps(data))
    refused = project.run("restore", "development", physical["backup_id"], "--force")
    assert refused.returncode == 2 and "no valid database" in refused.stderr, refused.stderr
    assert digest(project, "development", u) == changed
    assert not list(project.home.glob("environments/.*-restore"))


def test_damaged_unencrypted_backup_is_refused(project: Project) -> None:
    project.edit_matrix("kms_encryption: basic", "kms_encryption: disabled")
    assert project.run("create", "development").returncode == 0
    u = seed(project, "development", rows=2000)
    manifest = _backup(project)
    assert manifest["encryption"] is None
    mutate(project, "development", u)
    after_change = digest(project, "development", u)
    folder = Path(manifest["path"])
    # Not encrypted, nothing authenticates the bytes as they stream: a flipped byte is caught
    # by the sha256 at the end, or sooner by the unpacker choking on it (the first byte of the
    # physical backup is lz4's magic number) - either way reported as damage.
    for comp in manifest["components"]:
        path = folder / comp["file"]
        original = path.read_bytes()
        for spot in (0, len(original) // 2):
            _flip_byte(path, original, spot)
            result = project.run("restore", "development", manifest["backup_id"], "--force")
            assert result.returncode == 1, (comp["name"], result.stderr)
            assert "damaged" in result.stderr and comp["name"] in result.stderr, result.stderr
            assert digest(project, "development", u) == after_change
        path.write_bytes(original)
    assert not list(project.home.glob("environments/.*-restore"))
    done = project.run("restore", "development", manifest["backup_id"], "--force")
    assert done.returncode == 0, done.stderr
