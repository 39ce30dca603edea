"""`envplane drift` of a cloud environment against the real tools of tests/realkube.py (a real
kube-apiserver, real terraform with the provider stand-in, moto for AWS): a field another
field manager changed behind envplane's back is reported with that manager's name and both
values; a clean environment has no drift; drift changes nothing; `update` puts back what
drifted (saying whose change it overrode) and drift is clean after it."""

from __future__ import annotations

import json

import pytest

from tests.test_cloud_real import ENV, NS, Cloud, _clients, cloud  # noqa: F401 (the fixture)

pytest_plugins = ("tests.fakes.fixtures", "tests.realkube")
pytestmark = pytest.mark.realtools

MANAGER = "ops-hotfix"


@pytest.mark.kube
def test_a_field_changed_by_another_field_manager_is_reported_with_its_name(
    cloud: Cloud,  # noqa: F811
) -> None:
    project = cloud.project
    project.edit_matrix(
        "      backend:\n        replicas: 2", "      backend:\n        replicas: 1"
    )
    cloud.envplane("create", ENV, "--target", "cloud")
    try:
        clean = project.run("drift", ENV, "-o", "json", timeout=300)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert json.loads(clean.stdout)["items"] == []

        # Behind envplane's back: a ConfigMap value and the backend's replicas, by kubectl
        # under a field manager of its own.
        config = cloud.kubectl("get", "configmap", "app-config", "-n", NS)
        level = config["data"]["LOG_LEVEL"]
        patch = json.dumps({"data": {"LOG_LEVEL": "TRACE"}})
        cloud.tools.run(
            "kubectl", "patch", "configmap", "app-config", "-n", NS, "--type", "merge",
            "-p", patch, f"--field-manager={MANAGER}",
        )  # fmt: skip
        cloud.tools.run(
            "kubectl", "patch", "deployment", "backend-deployment", "-n", NS, "--type",
            "merge", "-p", '{"spec":{"replicas":3}}', f"--field-manager={MANAGER}",
        )  # fmt: skip
        before = cloud.kubectl("get", "deployment", "backend-deployment", "-n", NS)
        writes_before = len(cloud.kube.audit(namespace=NS))

        drifted = project.run("drift", ENV, "-o", "json", timeout=300)
        assert drifted.returncode == 1, drifted.stdout + drifted.stderr
        items = {(i["resource"], i["field"]): i for i in json.loads(drifted.stdout)["items"]}
        value = items[(f"kubernetes/ConfigMap/{NS}/app-config", "data.LOG_LEVEL")]
        assert (value["expected"], value["actual"], value["changed_by"]) == (
            level,
            "TRACE",
            MANAGER,
        )
        replicas = items[(f"kubernetes/Deployment/{NS}/backend-deployment", "spec.replicas")]
        assert (replicas["expected"], replicas["actual"], replicas["changed_by"]) == (
            "1",
            "3",
            MANAGER,
        )
        assert len(items) == 2, items  # nothing else differs
        text = project.run("drift", ENV, timeout=300)
        assert text.returncode == 1 and MANAGER in text.stdout and "TRACE" in text.stdout

        # Looking changed nothing: every write drift sent was a dry run, and the values
        # someone else set are still there.
        # (The node stand-in marks the new pods ready meanwhile: its writes are to pods.)
        writes = [
            e
            for e in _clients(cloud.kube.audit(namespace=NS)[writes_before:])
            if e["objectRef"].get("resource") != "pods"
        ]
        assert writes and all("dryRun=All" in e["requestURI"] for e in writes), [
            (e["verb"], e["requestURI"]) for e in writes
        ]
        after = cloud.kubectl("get", "deployment", "backend-deployment", "-n", NS)
        assert after["metadata"]["generation"] == before["metadata"]["generation"]
        assert after["spec"]["replicas"] == 3
        assert cloud.kubectl("get", "configmap", "app-config", "-n", NS)["data"]["LOG_LEVEL"] == (
            "TRACE"
        )

        # `update` puts both back as the matrix says, taking the fields over from the other
        # manager (the ConfigMap, applied without force otherwise, too), and says whose change
        # it overrode; drift is clean after it.
        repaired = project.run("update", ENV, timeout=600)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        said = repaired.stdout + repaired.stderr
        assert "drift: unhealthy (drifted:" in said, said
        assert f"data.LOG_LEVEL: overriding {MANAGER}'s change (TRACE -> {level})" in said, said
        assert f"spec.replicas: overriding {MANAGER}'s change (3 -> 1)" in said, said
        config = cloud.kubectl("get", "configmap", "app-config", "-n", NS)
        assert config["data"]["LOG_LEVEL"] == level
        assert not any(
            "f:LOG_LEVEL" in json.dumps(m.get("fieldsV1", {}))
            for m in config["metadata"]["managedFields"]
            if m["manager"] == MANAGER
        ), config["metadata"]["managedFields"]  # envplane owns the value again
        backend = cloud.kubectl("get", "deployment", "backend-deployment", "-n", NS)
        assert backend["spec"]["replicas"] == 1
        # the Deployments reading the ConfigMap were restarted onto the value put back
        annotations = backend["spec"]["template"]["metadata"].get("annotations") or {}
        assert "envplane.io/restartedAt" in annotations, annotations
        again = project.run("drift", ENV, "-o", "json", timeout=300)
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout)["items"] == []
        quiet = project.run("update", ENV, timeout=600)  # nothing drifted: nothing to do
        assert quiet.returncode == 0 and "overriding" not in quiet.stdout + quiet.stderr

        # Terraform: the database's address as Terraform's state records it changes behind
        # its back (edited in the state in moto's S3, its digest in DynamoDB with it):
        # `plan -detailed-exitcode` exits 2, and the attribute is listed with both values.
        address, moved = _move_database_in_state(cloud)
        tf = project.run("drift", ENV, "-o", "json", timeout=300)
        assert tf.returncode == 1, tf.stdout + tf.stderr
        found = [
            i
            for i in json.loads(tf.stdout)["items"]
            if i["resource"].startswith("terraform/infrastructure/")
            and (i["expected"], i["actual"]) == (address, moved)
        ]
        assert found, tf.stdout
        assert "aws_db_instance" in found[0]["resource"]
        assert not any(
            "pg-pw" in i["expected"] + i["actual"] for i in json.loads(tf.stdout)["items"]
        )
        # `update` applies the infrastructure again (its plan has the change), and the
        # state records the configuration's address; drift is clean after it.
        tf_repair = project.run("update", ENV, timeout=600)
        assert tf_repair.returncode == 0, tf_repair.stdout + tf_repair.stderr
        assert "terraform/infrastructure" in tf_repair.stdout and "drift" in tf_repair.stdout
        assert moved not in json.dumps(cloud.state())
        assert address in json.dumps(cloud.state())
        clean_again = project.run("drift", ENV, "-o", "json", timeout=300)
        assert clean_again.returncode == 0, clean_again.stdout + clean_again.stderr
    finally:
        cloud.envplane("destroy", ENV, "--force")


def _move_database_in_state(world: Cloud) -> tuple[str, str]:
    """Rewrite the RDS address in the environment's Terraform state; (old, new)."""
    import hashlib

    import boto3

    from tests.test_cloud_real import LOCK_TABLE, STATE_BUCKET, STATE_KEY

    state = world.state()
    db = next(r for r in state["resources"] if r["name"] == "aws_db_instance__main")
    text = json.dumps(db)
    address = json.loads(text)["instances"][0]["attributes"]["output"]["value"]["address"]
    moved = address.replace("sunday-staging.", "sunday-staging-replaced.")
    db.update(json.loads(text.replace(address, moved)))
    state["serial"] += 1
    body = json.dumps(state).encode()
    boto3.client("s3").put_object(Bucket=STATE_BUCKET, Key=STATE_KEY, Body=body)
    boto3.client("dynamodb").put_item(
        TableName=LOCK_TABLE,
        Item={
            "LockID": {"S": f"{STATE_BUCKET}/{STATE_KEY}-md5"},
            "Digest": {"S": hashlib.md5(body).hexdigest()},
        },
    )
    return address, moved
