"""Golden files of the cloud rendering: the Sunday matrix in, each environment's Terraform JSON,
Kubernetes manifests, Helm values and resource summary out (tests/golden/cloud/<env>/).

After an intended change, regenerate with `make golden` (ENVPLANE_UPDATE_GOLDEN=1) and review
`git diff tests/golden/cloud` before committing."""

from __future__ import annotations

import json
import os

import pytest

from envplane.matrix import load_matrix
from envplane.render.cloud import desired_cloud, rendered_files
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden" / "cloud"
MATRIX = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
UPDATE = os.environ.get("ENVPLANE_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_cloud_rendering_matches_golden(env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVPLANE_TF_STATE_BUCKET", "ENVPLANE_TF_LOCK_TABLE", "ENVPLANE_TF_STATE_REGION"):
        monkeypatch.delenv(name, raising=False)
    desired = desired_cloud(load_matrix(MATRIX), env)
    files = rendered_files(desired)
    summary = {
        "resources": [
            {
                "key": r.key,
                "depends_on": list(r.depends_on),
                "spec": {
                    k: v for k, v in r.spec.items() if k not in ("files", "manifests", "values")
                },
            }
            for r in desired.resources
        ],
        "notes": list(desired.notes),
        "secrets": list(desired.secrets),
    }
    files["desired.json"] = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    folder = GOLDEN / env
    if UPDATE:
        for old in folder.rglob("*") if folder.exists() else []:
            if old.is_file() and old.relative_to(folder).as_posix() not in files:
                old.unlink()
        for rel, text in files.items():
            (folder / rel).parent.mkdir(parents=True, exist_ok=True)
            (folder / rel).write_text(text)
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert present == sorted(files), f"{folder}: files differ from the rendering: run `make golden`"
    for rel, text in files.items():
        assert (folder / rel).read_text() == text, (
            f"{folder / rel} differs from its rendering: run `make golden` and review"
        )


def test_golden_folder_has_only_the_three_environments() -> None:
    assert sorted(p.name for p in GOLDEN.iterdir()) == ["development", "production", "staging"]
