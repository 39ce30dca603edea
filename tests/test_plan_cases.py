"""Planner cases as data (pyinfra's operation tests): tests/plan_cases/<name>.json, state in,
steps out, each run in-process through plan.diff.compute_plan or destroy_plan.

A case file holds:
- "description": one line, why the case exists;
- "target": "local" (default) or "cloud", whose kinds in creation order decide deletions;
- "operation": "create", "update" (compute_plan) or "destroy" (destroy_plan, no "desired");
- "desired": resources, each {"kind", "name", "spec", "depends_on"?};
- "recorded": what the store holds, key -> {"kind", "spec"} (its digest computed as the store
  would have) or {"kind", "digest", "spec"?} (an explicit digest, e.g. from an older renderer);
- "observed": key -> {"exists", "healthy", "detail"?}; with it, a key it does not list is
  observed as existing and healthy; without it nothing is observed (an offline plan);
- "expected": {"steps": [{"action", "resource", "reason", "changes"?, "contains"?}]}, or
  {"error": message} for a plan that is refused.

ENVPLANE_UPDATE_GOLDEN=1 (`make golden`) rewrites each case's "expected" from what the
planner does now; review `git diff tests/plan_cases` before committing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from envplane.plan.diff import compute_plan, destroy_plan
from envplane.plan.model import Plan
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets import registry
from envplane.targets.base import Observed
from tests.support import Recorded

CASES = Path(__file__).resolve().parent / "plan_cases"
UPDATE = os.environ.get("ENVPLANE_UPDATE_GOLDEN") == "1"
FIELDS = {"description", "target", "operation", "desired", "recorded", "observed", "expected"}


def _resource(data: Mapping[str, Any]) -> Resource:
    return Resource(
        data["kind"], data["name"], data.get("spec", {}), tuple(data.get("depends_on", ()))
    )


def _recorded(key: str, data: Mapping[str, Any]) -> Recorded:
    kind, name = key.split("/", 1)
    assert data["kind"] == kind, f"recorded {key} has kind {data['kind']}"
    spec = data.get("spec", {})
    digest = data["digest"] if "digest" in data else Resource(kind, name, spec).digest
    return Recorded(kind, digest, spec)


def _observer(observed: Mapping[str, Any] | None) -> Callable[[Resource], Observed] | None:
    if observed is None:
        return None
    seen = {
        key: Observed(o["exists"], o["healthy"], o.get("detail", "")) for key, o in observed.items()
    }
    return lambda res: seen.get(res.key, Observed(True, True))


def _steps(plan: Plan) -> list[dict[str, Any]]:
    out = []
    for step in plan.to_json()["steps"]:
        for optional in ("changes", "contains"):
            if not step[optional]:
                del step[optional]
        out.append(step)
    return out


def run(case: Mapping[str, Any]) -> dict[str, Any]:
    """What the planner makes of a case: its steps, or the error that refused it."""
    target = case.get("target", "local")
    kinds = registry.spec(target).kinds
    recorded = {key: _recorded(key, data) for key, data in case.get("recorded", {}).items()}
    try:
        if case["operation"] == "destroy":
            assert "desired" not in case, "a destroy plan works from the record alone"
            plan = destroy_plan("env", target, recorded, kinds)
        else:
            desired = DesiredEnvironment(
                "env", "project", target, tuple(_resource(r) for r in case["desired"])
            )
            plan = compute_plan(
                desired,
                recorded,
                operation=case["operation"],
                observe=_observer(case.get("observed")),
                kind_order=kinds,
            )
    except ValueError as exc:
        return {"error": str(exc)}
    assert plan.operation == case["operation"] and plan.target == target
    return {"steps": _steps(plan)}


@pytest.mark.parametrize("path", sorted(CASES.glob("*.json")), ids=lambda p: p.stem)
def test_plan_case(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert set(case) <= FIELDS, f"unknown fields: {sorted(set(case) - FIELDS)}"
    assert case["operation"] in ("create", "update", "destroy") and case.get("description")
    actual = run(case)
    if UPDATE:
        case["expected"] = actual
        path.write_text(json.dumps(case, indent=2) + "\n", encoding="utf-8")
    assert "expected" in case, f"{path.name} has no expected result: run `make golden`"
    assert actual == case["expected"], f"{path.name}: the planner now does otherwise"


def test_there_are_cases() -> None:
    assert len(list(CASES.glob("*.json"))) >= 12
