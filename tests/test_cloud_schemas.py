"""Every Kubernetes manifest the cloud target renders is valid against the Kubernetes schemas
(kubernetes-validate, strict: an unknown field fails), for every environment of the Sunday
example and of the seed's matrix, by every delivery strategy, with and without an Ingress, and
with a release's version on blue-green's other color."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from envplane.matrix import Matrix, load_matrix_text
from envplane.render.cloud import KUBERNETES_VERSION, desired_cloud
from envplane.render.model import Running
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "sunday" / "config" / "environment-matrix.yaml"
SEED = REPO / "tests" / "data" / "matrix" / "seed.yaml"
STRATEGIES = ("rolling", "recreate", "blue_green", "canary")
K8S = f"{KUBERNETES_VERSION}.0"


@pytest.fixture(autouse=True)
def _no_backend_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ENVPLANE_TF_STATE_BUCKET", "ENVPLANE_TF_LOCK_TABLE", "ENVPLANE_TF_STATE_REGION"):
        monkeypatch.delenv(name, raising=False)


def variant(path: Path, env: str, strategy: str, *, ingress: bool) -> Matrix:
    """The matrix at `path` with `env` deploying by `strategy` (and an Ingress if asked)."""
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    entry = dict(doc.get("deployment_strategies", {}).get(env) or {})
    entry["primary"] = strategy
    entry["alternatives"] = []
    if strategy == "canary" and not ingress:
        entry["steps"] = [{"weight": 100}]  # any replica count can express it
    doc.setdefault("deployment_strategies", {})[env] = entry
    if ingress:
        doc.setdefault("variables", {})["INGRESS_CLASS"] = "nginx"
    return load_matrix_text(yaml.safe_dump(doc, sort_keys=False), str(path))


def manifests(matrix: Matrix, env: str, **kwargs: Any) -> list[dict[str, Any]]:
    desired = desired_cloud(matrix, env, **kwargs)
    return list(desired.resource("kubernetes/workloads").spec["manifests"])


CASES = [
    pytest.param(path, env, strategy, ingress, id=f"{path.stem}-{env}-{strategy}-{ing}")
    for path in (EXAMPLE, SEED)
    for env in ("development", "staging", "production")
    for strategy in STRATEGIES
    for ingress, ing in ((False, "plain"), (True, "ingress"))
]


@pytest.mark.parametrize(("path", "env", "strategy", "ingress"), CASES)
def test_every_manifest_validates(path: Path, env: str, strategy: str, ingress: bool) -> None:
    matrix = variant(path, env, strategy, ingress=ingress)
    found = manifests(matrix, env)
    assert found[0]["kind"] == "Namespace"
    for manifest in found:
        kubernetes_validate.validate(manifest, K8S, strict=True)
    if path == EXAMPLE:
        kinds = {m["kind"] for m in found}
        assert ("Ingress" in kinds) == ingress


@pytest.mark.parametrize("strategy", ["blue_green", "canary"])
def test_a_release_on_the_other_color_validates(strategy: str) -> None:
    matrix = variant(EXAMPLE, "production", strategy, ingress=True)
    running = {"backend": Running("1.2.0-bad", "green")}
    found = manifests(matrix, "production", running=running)
    for manifest in found:
        kubernetes_validate.validate(manifest, K8S, strict=True)
    images = {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["containers"][0]["image"]
        for m in found
        if m["kind"] == "Deployment"
    }
    assert images["backend-green" if strategy == "blue_green" else "backend"] == (
        "ghcr.io/sunday/backend:1.2.0-bad"
    )


def test_the_schemas_refuse_an_unknown_field_of_the_new_objects() -> None:
    matrix = variant(EXAMPLE, "production", "canary", ingress=True)
    ingress = next(m for m in manifests(matrix, "production") if m["kind"] == "Ingress")
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["servicee"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ingress, K8S, strict=True)
