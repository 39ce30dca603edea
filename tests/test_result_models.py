"""The service layer's views (`envplane.service.results`, `results_data`) are the `-o json`
documents: built here from hand-made library results (no servers), their JSON keeps the keys,
order and value types the CLI printed before the views existed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from envplane.cli import output
from envplane.data.backup import BackupPlan, BackupResult
from envplane.data.catalog import Listed, PruneResult
from envplane.data.clone import CloneOutcome
from envplane.data.manifest import Component, Manifest
from envplane.data.restore import RestoreOutcome
from envplane.data.sync import SyncOutcome
from envplane.engine.outcome import Outcome
from envplane.lifecycle.inspect import EnvironmentInfo
from envplane.plan.model import Change, Plan, Step
from envplane.render.model import DesiredEnvironment, Resource
from envplane.service.backups import BackupDone
from envplane.service.plans import SavedPlan
from envplane.service.rendering import RenderedFiles
from envplane.service.results import (
    EnvironmentView,
    OperationView,
    PlanView,
    RenderView,
    SavedPlanView,
    ValidationView,
)
from envplane.service.results_data import (
    BackupListing,
    BackupView,
    CloneView,
    PruneView,
    RestoreView,
    SyncView,
)
from envplane.state.records import OperationRecord, StepRecord
from envplane.targets.base import Endpoint, ServiceStatus
from envplane.targets.checks import Check
from envplane.validate.checks import Report

T0 = datetime(2026, 11, 27, 2, 15, 3, 123456, tzinfo=UTC)
T1 = datetime(2026, 11, 27, 2, 16, 0, tzinfo=UTC)
SECRET = "postgresql://app:s3cret@127.0.0.1:5432/app"

PLAN = Plan(
    "dev",
    "local",
    "update",
    (
        Step("update", "service/backend", "spec changed", (Change("env.A", "1", ["2"]),)),
        Step("create", "postgres/postgres", "new", (), ("a",)),
        Step("noop", "redis/redis", "unchanged"),
    ),
    ("no multi-AZ",),
)
OP = OperationRecord(
    "op-1",
    "dev",
    "create",
    "succeeded",
    "me",
    1,
    "host",
    {},
    T0,
    T1,
    None,
    (
        StepRecord("op-1", 0, "postgres/postgres", "create", "done", "", T0, T1),
        StepRecord("op-1", 1, "data/mask", "mask", "running", "", T0, None),
    ),
)
MANIFEST = Manifest(
    "backup-dev-20261127-021503",
    "dev",
    "full",
    "2026-11-27T02:15:03+00:00",
    "me",
    "0.1",
    encryption={"algorithm": "aes-256-gcm", "key_id": "k1"},
    components=[
        Component("postgres", "postgres.tar", 10, "a" * 64, "tar", {"postgres_major": "16"})
    ],
)
LISTED = Listed(MANIFEST, Path("/b/backup-dev-20261127-021503"))

# The keys each document had when the CLI built it by hand (EnvironmentInfo.to_json,
# _op_summary + asdict(step) in history, Plan.to_json, Manifest.to_json + path/seconds, ...).
PLAN_KEYS = ["environment", "target", "operation", "summary", "steps", "notes"]
PLAN_STEP_KEYS = ["action", "resource", "reason", "changes", "contains"]
OP_KEYS = ["id", "kind", "status", "started_at", "finished_at", "error"]
HISTORY_STEP_KEYS = [
    "operation_id",
    "index",
    "resource_key",
    "action",
    "status",
    "detail",
    "started_at",
    "finished_at",
]
INFO_KEYS = [
    "name",
    "status",
    "target",
    "region",
    "template",
    "endpoints",
    "services",
    "last_operation",
    "notes",
    "release",
    "platform",
]
MANIFEST_KEYS = [
    "backup_id",
    "source_environment",
    "backup_type",
    "created_at",
    "created_by",
    "envplane_version",
    "target",
    "encryption",
    "components",
]
LISTED_KEYS = [
    "backup_id",
    "environment",
    "type",
    "created_at",
    "created_by",
    "bytes",
    "encrypted",
    "components",
    "path",
]


def _json(model: object) -> object:
    from pydantic import BaseModel

    assert isinstance(model, BaseModel)
    doc = model.model_dump(mode="json")
    assert json.loads(json.dumps(doc)) == doc  # JSON-native all the way down
    return doc


def _info() -> EnvironmentInfo:
    return EnvironmentInfo(
        "dev",
        "ready",
        "local",
        "eu-west-1",
        "default",
        [
            Endpoint("frontend", "http://127.0.0.1:8080"),
            Endpoint("postgres", "postgresql://app:***@127.0.0.1:5432/app", SECRET),
        ],
        [ServiceStatus("backend", 1, 2)],
        OP,
        ["no multi-AZ"],
    )


def test_info_shows_a_password_only_when_asked() -> None:
    shown = EnvironmentView.of(_info()).model_dump(mode="json")
    assert list(shown) == INFO_KEYS
    assert "s3cret" not in json.dumps(shown)
    assert shown["endpoints"]["postgres"] == "postgresql://app:***@127.0.0.1:5432/app"
    assert shown["services"] == {
        "backend": {"ready": 1, "desired": 2, "healthy": False, "version": None}
    }
    assert list(shown["last_operation"]) == OP_KEYS
    assert shown["last_operation"]["started_at"] == "2026-11-27T02:15:03.123456+00:00"
    secret = EnvironmentView.of(_info(), show_secrets=True).model_dump(mode="json")
    assert secret["endpoints"] == {"frontend": "http://127.0.0.1:8080", "postgres": SECRET}
    gone = _json(EnvironmentView.of(EnvironmentInfo("gone", "not created", None, None)))
    assert gone == dict.fromkeys(INFO_KEYS[:5]) | {
        "name": "gone",
        "status": "not created",
        "endpoints": {},
        "services": {},
        "last_operation": None,
        "notes": [],
        "release": None,
        "platform": None,
    }


def test_history_entry_is_the_summary_then_environment_and_steps() -> None:
    doc = _json(OperationView.of(OP))
    assert isinstance(doc, dict) and list(doc) == [*OP_KEYS, "environment", "steps"]
    assert doc["finished_at"] == "2026-11-27T02:16:00+00:00" and doc["error"] is None
    assert [list(s) for s in doc["steps"]] == [HISTORY_STEP_KEYS] * 2
    assert (
        doc["steps"][1]["started_at"] == T0.isoformat() and doc["steps"][1]["finished_at"] is None
    )


def test_plan_document_is_the_journal_and_a_saved_plan_leads_with_its_id() -> None:
    doc = _json(PlanView.of(PLAN))
    assert doc == PLAN.to_json()  # the journal stores the same document
    assert isinstance(doc, dict) and list(doc) == PLAN_KEYS
    assert doc["summary"] == {"create": 1, "update": 1, "delete": 0, "noop": 1}
    assert [list(s) for s in doc["steps"]] == [PLAN_STEP_KEYS] * 3
    assert doc["steps"][0]["changes"] == [{"path": "env.A", "old": "1", "new": ["2"]}]
    saved = _json(SavedPlanView.of(SavedPlan("plan-1", PLAN, {})))
    assert isinstance(saved, dict) and list(saved) == ["plan_id", *PLAN_KEYS]
    assert _json(SavedPlanView.of(SavedPlan(None, PLAN, {}))) == doc  # no plan_id key at all


def test_backup_is_its_manifest_with_path_and_seconds_and_pushed_to_when_pushed() -> None:
    result = BackupResult(
        BackupPlan("dev", "full", ["postgres"], True), MANIFEST, Path("/b/x"), 1.23456
    )
    local = _json(BackupView.of(BackupDone(result)))
    assert isinstance(local, dict) and list(local) == [*MANIFEST_KEYS, "path", "seconds"]
    assert local["seconds"] == 1.235 and local["path"] == "/b/x"
    assert local["components"] == [
        {
            "name": "postgres",
            "file": "postgres.tar",
            "bytes": 10,
            "sha256": "a" * 64,
            "format": "tar",
            "details": {"postgres_major": "16"},
        }
    ]
    pushed = _json(BackupView.of(BackupDone(result, "s3://bucket/p/backup-dev", 3)))
    assert isinstance(pushed, dict) and list(pushed)[-1] == "pushed_to"
    with pytest.raises(ValueError, match="dry run"):
        BackupView.of(BackupDone(BackupResult(result.plan)))


def test_backups_listing_and_prune() -> None:
    listed = _json(BackupListing.of(LISTED))
    assert isinstance(listed, dict) and list(listed) == LISTED_KEYS
    assert listed["bytes"] == 10 and listed["encrypted"] is True
    assert listed["components"] == ["postgres"]
    pruned = _json(PruneView.of(PruneResult([LISTED], [Path("/b/u")], 2, ["qa"]), dry_run=True))
    assert pruned == {
        "dry_run": True,
        "removed": [listed],
        "unfinished_removed": ["/b/u"],
        "kept": 2,
        "no_retention": ["qa"],
    }


def test_restore_clone_sync_documents() -> None:
    restore = RestoreOutcome(
        "dev", "b", "dev", True, ["stop"], ["postgres"], [], ["op-1"], True, 1.23456
    )
    doc = _json(RestoreView.of(restore))
    assert isinstance(doc, dict) and list(doc) == [
        "environment",
        "backup_id",
        "source_environment",
        "recreate",
        "steps",
        "components",
        "notes",
        "operations",
        "applied",
        "seconds",
    ]
    assert doc["seconds"] == 1.23456  # restore never rounded its seconds
    facts = {"postgres": {"bytes": 3}}
    clone = CloneOutcome(
        "a", "b", True, Outcome("b", PLAN), ["m"], facts, ["op"], True, 2.0004, 0.5
    )
    doc = _json(CloneView.of(clone))
    assert isinstance(doc, dict) and list(doc) == [
        "source",
        "target",
        "with_data",
        "plan",
        "masking",
        "data",
        "operations",
        "applied",
        "seconds",
        "data_seconds",
    ]
    assert doc["plan"] == PLAN.to_json() and doc["seconds"] == 2.0 and doc["data"] == facts
    sync = _json(SyncView.of(SyncOutcome("a", "b", "data", data_facts={"a": facts})))
    assert sync == {
        "source": "a",
        "target": "b",
        "type": "data",
        "config_plan": None,
        "data": {"a": facts},
        "masking": [],
        "operations": [],
        "applied": False,
    }


def test_validation_and_render_documents(capsys: pytest.CaptureFixture[str]) -> None:
    report = Report("dev", "basic", [Check("infrastructure", "db", "fail", "down", 0.5)])
    doc = _json(ValidationView.of(report))
    assert doc == {
        "environment": "dev",
        "level": "basic",
        "ok": False,
        "checks": [
            {
                "category": "infrastructure",
                "name": "db",
                "status": "fail",
                "detail": "down",
                "seconds": 0.5,
            }
        ],
    }
    desired = DesiredEnvironment("dev", "p", "cloud", (Resource("service", "a", {}),), ("n",))
    rendered = RenderedFiles("dev", "cloud", [Path("/o/main.tf.json")], desired)
    view = RenderView.of(rendered)
    assert _json(view) == {
        "environment": "dev",
        "target": "cloud",
        "files": ["/o/main.tf.json"],
        "resources": {"service/a": desired.resources[0].digest},
        "notes": ["n"],
    }
    output.emit_model([view])  # what `-o json` prints
    assert json.loads(capsys.readouterr().out) == [_json(view)]
