"""A release of several services on a real staging environment: they roll out in
`depends_on` order, and a failure in a later one rolls every service of the release back
together, the earlier ones (already moved) included, with no request lost meanwhile."""

from __future__ import annotations

import json

import pytest

from envplane.delivery.documents import DeployPlan, ServiceMove
from envplane.delivery.execute import resumes_forward
from envplane.state.records import RolloutRecord
from tests.conftest import Project
from tests.test_delivery_traffic import (
    deploy_under_load,
    make_staging,
    programs,
    status,
)

pytestmark = pytest.mark.slow

WORKER = """\
  worker:
    command: ["{python}", "app/backend.py"]
    port: 3001
    depends_on: [backend]
    version: "1.0.0"
    versions:
      "1.0.0": {}
      "2.0.0-broken":
        command: ["{python}", "-c", "raise SystemExit('worker 2.0.0-broken cannot start')"]
"""


def test_a_failure_in_a_later_service_rolls_every_service_back(project: Project) -> None:
    project.edit_matrix("\n# Values for the config", "\n" + WORKER + "\n# Values for the config")
    url = make_staging(project)
    made = project.run(
        "release", "create", "--service", "backend=1.1.0", "--service", "worker=2.0.0-broken"
    )
    assert made.returncode == 0, made.stderr
    rel = made.stdout.strip()
    planned = project.run("deploy", "staging", rel, "--dry-run", "-o", "json")
    assert planned.returncode == 0, planned.stderr
    order = [m["service"] for m in json.loads(planned.stdout)["moves"]]
    assert order == ["backend", "worker"]  # worker depends on backend

    result, load = deploy_under_load(project, url, rel)
    assert result.returncode == 1, result.stderr  # type: ignore[attr-defined]
    assert "rolled back" in result.stderr  # type: ignore[attr-defined]
    # backend had moved to 1.1.0 before worker failed: it is back on 1.0.0 too.
    services = status(project)["services"]
    assert services == {  # type: ignore[comparison-overlap]
        "backend": {"version": "1.0.0", "color": "blue"},
        "worker": {"version": "1.0.0", "color": "blue"},
    }
    report = load.report()
    assert report.failed_5xx == 0 and report.errors == 0, report.failures()[:5]
    backend_programs = [p for p in programs(project) if "backend" in p]
    assert backend_programs == ["svc-backend-0", "svc-backend-1"]  # nothing of green left
    last = status(project)["last_rollouts"][0]  # type: ignore[index]
    assert last["status"] == "rolled_back"


def _move(service: str) -> ServiceMove:
    return ServiceMove(
        service=service,
        from_version="1.0.0",
        from_color="blue",
        to_version="1.1.0",
        to_color="green",
        replicas=1,
    )


@pytest.mark.parametrize(
    ("switched", "forward"),
    [
        ([], False),
        (["backend"], False),  # killed between the two switches: both go back
        (["backend", "worker"], True),
    ],
)
def test_a_killed_blue_green_of_several_services_goes_forward_only_once_all_switched(
    switched: list[str], forward: bool
) -> None:
    plan = DeployPlan(
        environment="staging",
        release_id="rel-20261201-090000-aaaaaa",
        strategy="blue_green",
        moves=[_move("backend"), _move("worker")],
    )
    detail = {"switched": bool(switched), "switched_services": switched}
    record = _rollout(detail)
    assert resumes_forward(record, plan) is forward


def _rollout(detail: dict[str, object]) -> RolloutRecord:
    from datetime import UTC, datetime

    return RolloutRecord(
        id="op-20261201-0900-aaaaaa",
        env="staging",
        release_id="rel-20261201-090000-aaaaaa",
        kind="deploy",
        strategy="blue_green",
        status="running",
        phase="switch",
        actor="tester",
        previous_release_id=None,
        detail=detail,
        started_at=datetime.now(UTC),
        finished_at=None,
    )
