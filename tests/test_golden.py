"""Golden files: the Sunday matrix in, each environment's desired resources and create plan out.

A change in rendering shows up as a readable diff of tests/golden/. After an intended change,
regenerate with `make golden` (ENVPLANE_UPDATE_GOLDEN=1) and review the diff before committing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from envplane.matrix import load_matrix
from envplane.plan.diff import compute_plan
from envplane.render.local import desired_local, port_keys

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden"
MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
UPDATE = os.environ.get("ENVPLANE_UPDATE_GOLDEN") == "1"


def _normalise(value: object) -> object:
    text = json.dumps(value, indent=2, sort_keys=True)
    text = text.replace(sys.executable, "<PYTHON>").replace(
        str(REPO / "examples" / "sunday"), "<ROOT>"
    )
    return json.loads(text)


def _check(name: str, data: object) -> None:
    path = GOLDEN / name
    rendered = json.dumps(_normalise(data), indent=2, sort_keys=True) + "\n"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered)
    assert path.exists(), f"{path} missing: run `make golden`"
    assert rendered == path.read_text(), (
        f"{name} differs from its golden file: run `make golden` and review"
    )


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_local_rendering_matches_golden(env: str) -> None:
    matrix = load_matrix(MATRIX)
    ports = {key: 40000 + n for n, key in enumerate(port_keys(matrix, env))}
    desired = desired_local(
        matrix, env, env_dir=Path("/envplane-home/environments") / env, ports=ports
    )
    resources = [
        {"key": r.key, "depends_on": list(r.depends_on), "spec": dict(r.spec)}
        for r in desired.resources
    ]
    _check(f"sunday/{env}.local.json", {"resources": resources, "notes": list(desired.notes)})
    plan = compute_plan(desired, {}, operation="create")
    _check(f"sunday/{env}.plan.json", plan.to_json())


def test_rendering_is_deterministic() -> None:
    matrix = load_matrix(MATRIX)
    ports = {key: 41000 + n for n, key in enumerate(port_keys(matrix, "staging"))}
    first = desired_local(matrix, "staging", env_dir=Path("/h/staging"), ports=ports)
    second = desired_local(load_matrix(MATRIX), "staging", env_dir=Path("/h/staging"), ports=ports)
    assert [r.digest for r in first.resources] == [r.digest for r in second.resources]


def test_matrix_without_project_never_says_sunday(tmp_path: Path) -> None:
    text = MATRIX.read_text().replace("project: sunday\n", "")
    text = text.replace("name: sunday-production", "name: shop-production")
    text = text.replace("name: sunday-staging", "name: shop-staging").replace(
        "name: sunday-development", "name: shop-dev"
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "environment-matrix.yaml").write_text(text)
    tpl = tmp_path / "templates" / "environments" / "development"
    tpl.mkdir(parents=True)
    (tpl / "config.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\n"
        "  namespace: '{{NAMESPACE}}'\n"
        "data:\n  DB: '{{POSTGRES_DB}}'\n"
    )
    matrix = load_matrix(config / "environment-matrix.yaml")
    ports = {key: 42000 + n for n, key in enumerate(port_keys(matrix, "development"))}
    desired = desired_local(matrix, "development", env_dir=tmp_path / "h", ports=ports)
    dump = json.dumps([dict(r.spec) for r in desired.resources]) + json.dumps(desired.notes)
    assert "sunday" not in dump.lower()
    assert "envplane_development" in dump
