"""The Terraform driver against a stand-in `terraform` first on PATH (tests/fakes/terraform):
the seed's command sequence, per-environment backend key, -json events, failures, resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from envplane.errors import OperationFailed, ToolMissing
from envplane.matrix import load_matrix
from envplane.render.cloud import desired_cloud
from envplane.targets.cloud import infra
from envplane.targets.cloud.terraform import Terraform
from envplane.targets.cloud.tfevents import Events
from tests.conftest import REPO

if TYPE_CHECKING:
    from tests.fakes.fixtures import Ctx, Tools

MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
OUTPUTS = {"vpc_id": "vpc-0123", "storage_bucket": "sunday-staging-storage"}

REGION = "us-east-1"  # the moto fixture's default region
pytest_plugins = ("tests.fakes.fixtures",)


@pytest.fixture
def infra_spec(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name in ("ENVPLANE_TF_STATE_BUCKET", "ENVPLANE_TF_LOCK_TABLE", "ENVPLANE_TF_STATE_REGION"):
        monkeypatch.delenv(name, raising=False)
    desired = desired_cloud(load_matrix(MATRIX), "staging")
    return dict(desired.resource("terraform/infrastructure").spec)


def test_create_runs_init_plan_apply_with_the_environment_backend(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.outputs(OUTPUTS)  # no cluster_name: this test does not ask EKS
    infra.apply(env_ctx.ctx, infra_spec)
    workdir = env_ctx.ctx.env_dir / "terraform"
    assert tools.commands() == [
        [
            "init",
            "-input=false",
            "-no-color",
            "-backend-config=key=environments/staging/terraform.tfstate",
            "-backend-config=bucket=sunday-terraform-state",
            "-backend-config=region=us-east-1",
            "-backend-config=dynamodb_table=sunday-terraform-locks",
        ],
        ["plan", "-input=false", "-out=tfplan", "-json"],
        ["apply", "-input=false", "-json", "tfplan"],
        ["output", "-json"],
    ]
    calls = tools.calls()
    assert {c["cwd"] for c in calls} == {str(workdir)}
    assert all(c["tf_vars"] == [] for c in calls)  # no variables, so no secret, anywhere
    assert calls[0]["env"]["TF_IN_AUTOMATION"] == "1"
    assert sorted(tools.applied()) == infra_spec["resources"]
    for name, text in infra_spec["files"].items():
        assert (workdir / name).read_text() == text
    assert not (workdir / "tfplan").exists()  # a used plan is never applied twice
    assert any(m.startswith("Plan: 44 to add") for m in env_ctx.messages)
    assert any("Creation complete" in m for m in env_ctx.messages)
    assert "Apply complete! Resources: 44 added, 0 changed, 0 destroyed." in env_ctx.messages


def test_nothing_to_change_means_no_apply(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.outputs(OUTPUTS)
    infra.apply(env_ctx.ctx, infra_spec)
    first = len(tools.commands())
    infra.apply(env_ctx.ctx, infra_spec)
    again = [c[0] for c in tools.commands()[first:]]
    assert again == ["init", "plan", "output"]
    assert "infrastructure matches the Terraform files" in env_ctx.messages


def test_init_failure_is_a_clear_error_and_nothing_else_runs(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.fail("terraform", "init")
    with pytest.raises(OperationFailed) as caught:
        infra.apply(env_ctx.ctx, infra_spec)
    assert "terraform init failed" in caught.value.message
    assert 'S3 bucket "sunday-terraform-state" does not exist' in caught.value.message
    assert caught.value.hint and "ENVPLANE_TF_STATE_BUCKET" in caught.value.hint
    assert [c[0] for c in tools.commands()] == ["init"]


def test_plan_error_names_the_diagnostic_and_its_address(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.fail("terraform", "plan")
    with pytest.raises(OperationFailed, match=r"Unsupported argument \(aws_vpc.main\)"):
        infra.apply(env_ctx.ctx, infra_spec)
    assert [c[0] for c in tools.commands()] == ["init", "plan"]


def test_apply_failing_halfway_then_a_second_apply_resumes(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.outputs(OUTPUTS)
    tools.fail("terraform", "apply:5")
    with pytest.raises(OperationFailed) as caught:
        infra.apply(env_ctx.ctx, infra_spec)
    err = caught.value
    assert "terraform apply failed: 5 change(s) were made before it stopped" in err.message
    assert "Subnets specified must be in at least two different AZs" in err.message
    assert err.hint and "resume" in err.hint
    assert len(tools.applied()) == 5
    assert not (env_ctx.ctx.env_dir / "terraform" / "tfplan").exists()
    before = len(tools.commands())
    infra.apply(env_ctx.ctx, infra_spec)  # what `envplane resume` does for this step
    assert [c[0] for c in tools.commands()[before:]] == ["init", "plan", "apply", "output"]
    assert "Plan: 39 to add, 0 to change, 0 to destroy." in env_ctx.messages
    assert sorted(tools.applied()) == infra_spec["resources"]


def test_destroy_then_the_state_is_proved_empty(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.outputs(OUTPUTS)
    infra.apply(env_ctx.ctx, infra_spec)
    before = len(tools.commands())
    infra.delete(env_ctx.ctx, infra_spec)
    assert tools.commands()[before:] == [
        tools.commands()[0],  # the same init, backend key and all
        ["destroy", "-auto-approve", "-input=false", "-json"],
        ["state", "list"],
    ]
    assert tools.applied() == []
    assert "Destroy complete! Resources: 44 destroyed." in env_ctx.messages
    observed = infra.observe(env_ctx.ctx, infra_spec)
    assert not observed.exists


def test_destroy_failure_keeps_the_state_and_says_how_to_go_on(
    tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]
) -> None:
    tools.outputs(OUTPUTS)
    infra.apply(env_ctx.ctx, infra_spec)
    tools.fail("terraform", "destroy")
    with pytest.raises(OperationFailed, match="BucketNotEmpty") as caught:
        infra.delete(env_ctx.ctx, infra_spec)
    assert caught.value.hint and "resume" in caught.value.hint
    assert len(tools.applied()) == 44


def test_observe_before_and_after(tools: Tools, env_ctx: Ctx, infra_spec: dict[str, Any]) -> None:
    assert infra.observe(env_ctx.ctx, infra_spec).exists is False
    tools.outputs(OUTPUTS)
    infra.apply(env_ctx.ctx, infra_spec)
    seen = infra.observe(env_ctx.ctx, infra_spec)
    assert seen.exists and seen.healthy
    assert infra.outputs(env_ctx.ctx) == OUTPUTS


def test_neither_terraform_nor_tofu_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env_ctx: Ctx
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ENVPLANE_TERRAFORM", raising=False)
    with pytest.raises(ToolMissing) as caught:
        Terraform(tmp_path, print)
    assert "'terraform' or 'tofu'" in caught.value.message
    assert caught.value.hint and "ENVPLANE_TERRAFORM" in caught.value.hint


def test_stale_files_are_removed_and_odd_names_refused(tools: Tools, tmp_path: Path) -> None:
    tf = Terraform(tmp_path / "w", print)
    tf.write({"a.tf.json": "{}\n", "b.tf.json": "{}\n"})
    tf.write({"a.tf.json": "{}\n"})
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["a.tf.json"]
    assert ((tmp_path / "w" / "a.tf.json").stat().st_mode & 0o777) == 0o600
    with pytest.raises(OperationFailed):
        tf.write({"../evil.tf.json": "{}"})


def test_event_stream_parsing() -> None:
    seen: list[str] = []
    events = Events()
    lines = [
        '{"@level":"info","@message":"Terraform 1.9.8","type":"version","terraform":"1.9.8"}',
        "a provider printed this plain line",
        json.dumps(
            {
                "@message": "aws_vpc.main: Plan to create",
                "type": "planned_change",
                "change": {"resource": {"addr": "aws_vpc.main"}, "action": "create"},
            }
        ),
        json.dumps(
            {
                "@level": "warn",
                "@message": "Warning: Argument is deprecated",
                "type": "diagnostic",
                "diagnostic": {"severity": "warning", "summary": "Argument is deprecated"},
            }
        ),
        json.dumps(
            {
                "@message": "Plan: 1 to add, 0 to change, 0 to destroy.",
                "type": "change_summary",
                "changes": {"add": 1, "change": 0, "remove": 0, "import": 0},
            }
        ),
    ]
    for line in lines:
        events.feed(line, seen.append)
    assert events.version == "1.9.8"
    assert events.planned == [("aws_vpc.main", "create")]
    assert events.changes == 1 and events.errors == []
    assert seen == ["warning: Argument is deprecated", "Plan: 1 to add, 0 to change, 0 to destroy."]
