"""The cloud target's data operations against a real moto server process: backup (an RDS
snapshot, an ElastiCache snapshot, the bucket's objects), restore (each verified first, the
instance and the group swapped in through the stand-in terraform with `snapshot_identifier` /
`snapshot_name` and `-replace`), clone --with-data (fresh snapshots of the source's swapped into
the destination, objects copied server-side), a snapshot AWS reports failed, and bad inputs.

moto keeps every RDS and ElastiCache snapshot `available` at once; a `failed` one is injected at
the boto3 boundary (an after-call hook rewriting the status moto answered), in-process."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from envplane.errors import OperationFailed
from envplane.settings import Settings
from envplane.targets.cloud import aws as cloud_aws
from envplane.workspace import Workspace
from tests.conftest import Project
from tests.fakes.kubeapi import FakeKube

if TYPE_CHECKING:
    from tests.fakes.fixtures import Tools

pytest_plugins = ("tests.fakes.fixtures",)
REGION = "us-east-1"
OBJECTS = {"a.json": b'{"a": 1}', "dir/b.csv": b"x,y\n1,2\n", "big.bin": bytes(range(256)) * 4096}
REAL_CLIENT = cloud_aws.client
QUICK = {"ENVPLANE_AWS_POLL": "0.01", "ENVPLANE_AWS_WAIT": "5"}


def made_in_aws(stack: str, objects: dict[str, bytes] | None = None) -> None:
    """What terraform apply would have made for an environment: its RDS instance, its Redis
    replication group, its bucket (with objects)."""
    boto3.client("rds", region_name=REGION).create_db_instance(
        DBInstanceIdentifier=stack,
        DBInstanceClass="db.r5.large",
        Engine="postgres",
        EngineVersion="14.9",
        AllocatedStorage=20,
        MasterUsername="app",
        ManageMasterUserPassword=True,
    )
    boto3.client("elasticache", region_name=REGION).create_replication_group(
        ReplicationGroupId=stack,
        ReplicationGroupDescription="redis",
        Engine="redis",
        CacheNodeType="cache.t3.medium",
        NumCacheClusters=1,
    )
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=f"{stack}-storage")
    for key, body in (objects or {}).items():
        s3.put_object(Bucket=f"{stack}-storage", Key=key, Body=body)


def bucket(stack: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", region_name=REGION)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=f"{stack}-storage").get("Contents", [])]
    return {k: s3.get_object(Bucket=f"{stack}-storage", Key=k)["Body"].read() for k in keys}


@pytest.fixture
def cloud(
    project: Project, staging_made: Tools, kube_env: FakeKube, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """staging created on the cloud target (stand-ins, fake API), its data made in moto."""
    for key, value in QUICK.items():
        monkeypatch.setenv(key, value)
    created = project.run("create", "staging", "--target", "cloud")
    assert created.returncode == 0, created.stderr + created.stdout
    made_in_aws("sunday-staging", OBJECTS)
    yield project


def workspace(project: Project) -> Workspace:
    return Workspace(
        Settings(project.matrix, project.home, f"sqlite:///{project.home / 'state.db'}")
    )


def replaced(tools: Tools) -> list[str]:
    """The addresses terraform was asked to rebuild (`plan -replace=...`)."""
    return [
        arg.split("=", 1)[1]
        for argv in tools.commands("terraform")
        if argv[:1] == ["plan"]
        for arg in argv
        if arg.startswith("-replace=")
    ]


def fail_snapshots(monkeypatch: pytest.MonkeyPatch, *, rds: bool = True) -> None:
    """Every snapshot moto describes comes back `failed` (rewritten after the call)."""
    real = cloud_aws.client

    def failing(parsed: dict[str, Any], **_: Any) -> None:
        for snap in parsed.get("DBSnapshots", []):
            snap["Status"] = "failed"
        for snap in parsed.get("Snapshots", []):
            snap["SnapshotStatus"] = "failed"

    def client(service: str, region: str) -> Any:
        made = real(service, region)
        event = "DescribeDBSnapshots" if rds else "DescribeSnapshots"
        made.meta.events.register(f"after-call.{service}.{event}", failing)
        return made

    monkeypatch.setattr(cloud_aws, "client", client)


def test_backup_restore_each_verified_and_swapped_through_terraform(
    cloud: Project, staging_made: Tools
) -> None:
    done = cloud.run("backup", "staging", "--type", "full", "-o", "json")
    assert done.returncode == 0, done.stderr
    manifest = json.loads(done.stdout)
    backup_id = manifest["backup_id"]
    assert manifest["target"] == "cloud"
    comps = {c["name"]: c for c in manifest["components"]}
    assert set(comps) == {"config", "postgres", "redis", "storage"}
    db = comps["postgres"]["details"]
    assert comps["postgres"]["format"] == "rds-snapshot"
    assert comps["postgres"]["file"].startswith("postgres.snapshot.json")
    assert comps["storage"]["file"].startswith("storage.tar")
    assert db["snapshot_identifier"] == f"{backup_id}-db" and db["source"] == "sunday-staging"
    assert db["snapshot_arn"].endswith(f":snapshot:{backup_id}-db")
    assert comps["redis"]["details"]["snapshot_identifier"] == f"{backup_id}-cache"
    assert comps["redis"]["details"]["snapshot_arn"]
    store = comps["storage"]["details"]
    assert store["objects"] == "3" and store["bucket"] == "sunday-staging-storage"
    # The snapshots exist in AWS, available, under the recorded names.
    rds = boto3.client("rds", region_name=REGION)
    snap = rds.describe_db_snapshots(DBSnapshotIdentifier=f"{backup_id}-db")["DBSnapshots"][0]
    assert snap["Status"] == "available" and snap["DBSnapshotArn"] == db["snapshot_arn"]
    ec = boto3.client("elasticache", region_name=REGION)
    assert ec.describe_snapshots(SnapshotName=f"{backup_id}-cache")["Snapshots"]

    # The objects change after the backup: the restore brings the backup's back exactly.
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket="sunday-staging-storage", Key="a.json", Body=b"changed")
    s3.put_object(Bucket="sunday-staging-storage", Key="later.txt", Body=b"later")
    s3.delete_object(Bucket="sunday-staging-storage", Key="dir/b.csv")
    before = len(staging_made.commands("terraform"))
    restored = cloud.run("restore", "staging", backup_id, "--force")
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert bucket("sunday-staging") == OBJECTS
    calls = staging_made.commands("terraform")[before:]
    assert sorted(replaced(staging_made)) == [
        "aws_db_instance.main",
        "aws_elasticache_replication_group.main",
    ]
    assert [c[0] for c in calls].count("apply") == 2
    assert all(c[-1] == "tfplan" for c in calls if c[0] == "apply")
    # The override the swap applied (the last one stays until the next apply rewrites the
    # files): the snapshot named, its attribute no longer ignored.
    override = cloud.home / "environments" / "staging" / "terraform" / "restore_override.tf.json"
    body = json.loads(override.read_text())["resource"]
    if "aws_db_instance" in body:
        main = body["aws_db_instance"]["main"]
        assert main == {"snapshot_identifier": f"{backup_id}-db",
                        "lifecycle": {"ignore_changes": ["db_name"]}}  # fmt: skip
    else:
        main = body["aws_elasticache_replication_group"]["main"]
        assert main == {"snapshot_name": f"{backup_id}-cache", "lifecycle": {"ignore_changes": []}}
    info = cloud.json("info", "staging")
    assert info["status"] == "ready"  # type: ignore[index]
    history = cloud.json("history", "staging")
    restore_op = next(op for op in history if op["kind"] == "restore")  # type: ignore[union-attr]
    assert restore_op["status"] == "succeeded"
    # The base files ignore the snapshot attributes: the next apply does not replace again.
    database = json.loads((override.parent / "database.tf.json").read_text())
    assert database["resource"]["aws_db_instance"]["main"]["lifecycle"] == {
        "ignore_changes": ["snapshot_identifier", "db_name"]
    }


def test_a_damaged_object_or_a_deleted_snapshot_is_refused_before_anything_is_swapped(
    cloud: Project, staging_made: Tools
) -> None:
    manifest = json.loads(cloud.run("backup", "staging", "-o", "json").stdout)
    backup_id = manifest["backup_id"]
    boto3.client("rds", region_name=REGION).delete_db_snapshot(
        DBSnapshotIdentifier=f"{backup_id}-db"
    )
    before = len(staging_made.commands("terraform"))
    result = cloud.run("restore", "staging", backup_id, "--force")
    assert result.returncode == 1, result.stderr
    assert f"RDS snapshot {backup_id}-db does not exist" in result.stderr
    assert not replaced(staging_made)
    assert all(c[0] != "apply" for c in staging_made.commands("terraform")[before:])
    assert bucket("sunday-staging") == OBJECTS
    assert cloud.json("info", "staging")["status"] == "ready"  # type: ignore[index]
    assert all(op["kind"] != "restore" for op in cloud.json("history", "staging"))  # type: ignore[union-attr]


def test_bad_inputs_exit_2_and_change_nothing(cloud: Project, staging_made: Tools) -> None:
    missing = cloud.run("restore", "staging", "backup-staging-20200101-000000", "--force")
    assert missing.returncode == 2, missing.stderr
    logical = cloud.run("backup", "staging", "--logical")
    assert logical.returncode == 2 and "RDS snapshot" in logical.stderr
    # A backup made on the local target cannot be restored into a cloud environment.
    manifest = json.loads(cloud.run("backup", "staging", "-o", "json").stdout)
    folder = cloud.home / "backups" / manifest["backup_id"]
    raw = json.loads((folder / "manifest.json").read_text())
    raw["target"] = "local"
    (folder / "manifest.json").write_text(json.dumps(raw))
    other = cloud.run("restore", "staging", manifest["backup_id"], "--force")
    assert other.returncode == 2 and "local environment" in other.stderr, other.stderr
    wrong_env = cloud.run("restore", "development", manifest["backup_id"], "--force")
    assert wrong_env.returncode == 2, wrong_env.stderr
    assert not replaced(staging_made)
    assert bucket("sunday-staging") == OBJECTS
    kinds = [op["kind"] for op in cloud.json("history", "staging")]  # type: ignore[union-attr]
    assert "restore" not in kinds


def test_a_snapshot_aws_reports_failed_fails_the_backup_resumably(
    cloud: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envplane.data import backup, list_backups
    from envplane.service import resume

    ws = workspace(cloud)
    fail_snapshots(monkeypatch)
    with pytest.raises(OperationFailed) as caught:
        backup(ws, "staging", "data")
    assert "is failed: AWS reports it unusable" in caught.value.message
    op_id = caught.value.operation_id
    assert op_id and not list_backups(ws, "staging")
    # The failed snapshot was removed; nothing of the backup is listed.
    snaps = boto3.client("rds", region_name=REGION).describe_db_snapshots(
        DBInstanceIdentifier="sunday-staging", SnapshotType="manual"
    )["DBSnapshots"]
    assert snaps == []
    monkeypatch.setattr(cloud_aws, "client", REAL_CLIENT)  # AWS answers truthfully again
    ws = workspace(cloud)
    resume(ws, op_id)
    listed = list_backups(ws, "staging")
    assert len(listed) == 1


def test_a_restore_whose_snapshot_aws_reports_failed_swaps_nothing(
    cloud: Project, staging_made: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envplane.data import restore

    backup_id = json.loads(cloud.run("backup", "staging", "-o", "json").stdout)["backup_id"]
    fail_snapshots(monkeypatch, rds=False)  # the ElastiCache snapshot reads back failed
    with pytest.raises(OperationFailed, match=f"ElastiCache snapshot {backup_id}-cache is failed"):
        restore(workspace(cloud), "staging", backup_id, force=True)
    assert not replaced(staging_made)
    assert cloud.json("info", "staging")["status"] == "ready"  # type: ignore[index]


def test_clone_with_data_from_fresh_snapshots_and_a_failed_one_resumed(
    cloud: Project, staging_made: Tools, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envplane.data import clone
    from envplane.service import resume
    from envplane.targets.cloud import data_sql

    renamed: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        data_sql, "rename_database", lambda _r, inst, old, new: renamed.append((inst, old, new))
    )
    made_in_aws("sunday-staging-copy", {"stale.txt": b"old"})
    fail_snapshots(monkeypatch)
    ws = workspace(cloud)
    with pytest.raises(OperationFailed) as caught:
        clone(ws, "staging", "staging-copy", with_data=True)
    op_id = caught.value.operation_id
    assert op_id and "is failed" in caught.value.message
    assert "aws_db_instance.main" not in replaced(staging_made)  # nothing swapped
    assert renamed == []
    assert ws.store.get_environment("staging-copy").status == "failed"  # type: ignore[union-attr]

    monkeypatch.setattr(cloud_aws, "client", REAL_CLIENT)  # AWS answers truthfully again
    resume(workspace(cloud), op_id)
    assert workspace(cloud).store.get_environment("staging-copy").status == "ready"  # type: ignore[union-attr]
    assert "aws_db_instance.main" in replaced(staging_made)
    assert "aws_elasticache_replication_group.main" in replaced(staging_made)
    snaps = boto3.client("rds", region_name=REGION).describe_db_snapshots(
        DBInstanceIdentifier="sunday-staging", SnapshotType="manual"
    )["DBSnapshots"]
    assert [
        s["DBSnapshotIdentifier"].startswith("sunday-staging-copy-from-staging-") for s in snaps
    ] == [True]
    assert bucket("sunday-staging-copy") == OBJECTS  # server-side copies, ETags checked
    assert bucket("sunday-staging") == OBJECTS  # the source is only read
    assert renamed == [("sunday-staging-copy", "sunday_staging", "sunday_staging_copy")]
    work = cloud.home / "environments" / "staging-copy" / "terraform"
    assert work.is_dir()  # the swap ran in the destination's own working directory


def test_object_index_catches_a_changed_object(tmp_path: Path) -> None:
    from envplane.targets.cloud import data_objects

    tree = tmp_path / "tree"
    (tree / "objects").mkdir(parents=True)
    (tree / "objects" / "a").write_bytes(b"good")
    index = {"a": {"size": 4, "etag": "", "sha256": hashlib.sha256(b"good").hexdigest()}}
    (tree / "index.json").write_text(json.dumps(index))
    assert set(data_objects.check_tree(tree)) == {"a"}
    (tree / "objects" / "a").write_bytes(b"evil")
    with pytest.raises(OperationFailed, match="object a does not match its sha256"):
        data_objects.check_tree(tree)
