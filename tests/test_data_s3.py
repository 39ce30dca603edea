"""Backups pushed to and pulled from S3 - a real moto server process on loopback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.datakit import digest, mutate, seed
from tests.pgserver import free_port

pytestmark = pytest.mark.slow

MOTO = Path(sys.executable).parent / "moto_server"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto accepts any
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    if not MOTO.exists():
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    for _attempt in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [str(MOTO), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        if proc.poll() is None:
            break
    else:
        raise RuntimeError("moto_server did not start")
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_and_pull(project: Project, s3_endpoint: str) -> None:
    import boto3

    aws = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3_endpoint}
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket="envplane-backups")

    assert project.run("create", "development").returncode == 0
    seed(project, "development", rows=2000)
    before = digest(project, "development")
    pushed = project.run(
        "backup", "development", "--to", "s3://envplane-backups/team/a", "-o", "json", **aws
    )
    assert pushed.returncode == 0, pushed.stderr
    manifest = json.loads(pushed.stdout)
    backup_id = manifest["backup_id"]
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="envplane-backups")["Contents"])
    assert f"team/a/{backup_id}/manifest.json" in keys
    assert len(keys) == len(manifest["components"]) + 1
    assert not any("key" in k.rsplit("/", 1)[-1] for k in keys)  # the backup key stays here

    shutil.rmtree(Path(manifest["path"]))  # only the bucket has it now
    assert project.json("backups") == []
    mutate(project, "development")
    missing = project.run(
        "restore", "development", "backup-development-20200101-000000", "--force",
        "--from", "s3://envplane-backups/team/a", **aws,
    )  # fmt: skip
    assert missing.returncode == 2 and "no backup" in missing.stderr
    done = project.run(
        "restore", "development", backup_id, "--force",
        "--from", f"s3://envplane-backups/team/a/{backup_id}", **aws,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert digest(project, "development") == before
    assert [b["backup_id"] for b in project.json("backups")] == [backup_id]  # type: ignore[union-attr]
