"""The seed's matrix loads unchanged; the Sunday example is the seed plus documented additions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from envplane.errors import UnknownEnvironment
from envplane.matrix import load_matrix, load_matrix_text

DATA = Path(__file__).parent / "data" / "matrix"
ROOT = Path(__file__).parent.parent
SEED = DATA / "seed.yaml"
EXAMPLE = ROOT / "examples/sunday/config/environment-matrix.yaml"
SEED_DOC = Path("/work/shared/seed/000_f560f212b7d2e55c.txt")
ADDED = {"template", "services", "variables", "extends"}  # envplane's keys, not the seed's


def test_seed_fixture_is_the_seed_block_verbatim() -> None:
    if not SEED_DOC.exists():
        pytest.skip("the seed document is not on this machine")
    block = SEED_DOC.read_text().split("```yaml\n# config/environment-matrix.yaml\n", 1)[1]
    assert SEED.read_text() == "# config/environment-matrix.yaml\n" + block.split("```", 1)[0]


def test_seed_loads_with_every_value_unchanged() -> None:
    raw = yaml.safe_load(SEED.read_text())
    matrix = load_matrix(SEED)
    assert list(matrix.environments) == ["production", "staging", "development"]
    for name, env in matrix.environments.items():
        loaded = env.model_dump(exclude_unset=True, exclude=ADDED)
        assert loaded == raw["environments"][name]
    # What the seed writes reads back unchanged; envplane's additions keep their defaults.
    strategies = {
        k: v.model_dump(include=set(raw["deployment_strategies"][k]))
        for k, v in matrix.deployment_strategies.items()
    }
    assert strategies == raw["deployment_strategies"]


def test_seed_spellings_survive() -> None:
    prod = load_matrix(SEED).environment("production")
    assert prod.storage.versioning == "enabled"
    assert prod.security.iam_roles == "strict"
    assert prod.databases.primary.version == "14.9"
    assert prod.clusters[0].name == "sunday-production"  # written in the seed itself
    assert prod.regions.secondary == "us-west-2"


def test_seed_without_project_uses_the_default_project() -> None:
    matrix = load_matrix(SEED)
    assert matrix.project == "envplane"
    assert matrix.environment("staging").template == "staging"
    assert matrix.services_for("staging") == {}
    assert matrix.variables_for("staging") == {}


def test_example_keeps_every_seed_line_in_order() -> None:
    example = iter(EXAMPLE.read_text().splitlines())
    missing = [line for line in SEED.read_text().splitlines() if line not in example]
    assert missing == []


def test_example_additions() -> None:
    matrix = load_matrix(EXAMPLE)
    assert matrix.project == "sunday"
    assert matrix.templates_dir == (ROOT / "examples/sunday/templates").absolute()
    backend = matrix.services_for("development")["backend"]
    assert backend.command == ["{python}", "app/backend.py"]
    assert backend.image == "ghcr.io/sunday/backend:1.0.0"
    assert (backend.port, backend.health_path) == (3000, "/health")
    assert backend.metrics_path == "/metrics"
    assert backend.replicas == 1 and backend.env == {}
    assert matrix.services_for("staging")["backend"].replicas == 2
    assert matrix.services_for("production")["backend"].replicas == 3
    assert matrix.services_for("production")["backend"].port == 3000  # the rest is inherited
    assert matrix.variables_for("production") == {"SENTRY_DSN": "", "ANALYTICS_ID": ""}


def test_strategies_and_their_default() -> None:
    matrix = load_matrix(EXAMPLE)
    prod = matrix.strategy_for("production")
    assert (prod.primary, prod.alternatives) == ("blue_green", ["canary"])
    assert prod.validation_required == "comprehensive" and prod.approval_required is True
    matrix_text = SEED.read_text().split("deployment_strategies:")[0]
    default = load_matrix_text(matrix_text, "m.yaml").strategy_for("production")
    seed_keys = {"primary", "alternatives", "validation_required", "approval_required"}
    assert default.model_dump(include=seed_keys) == {
        "primary": "rolling",
        "alternatives": [],
        "validation_required": "basic",
        "approval_required": False,
    }
    # envplane's additions default to: the upstream by the listing, one approver, no soak.
    assert (default.promote_from, default.approvals, default.soak) == (None, 1, None)
    assert [s.weight for s in default.steps] == [10, 25, 50, 100]


def test_matrix_without_project_never_says_sunday() -> None:
    matrix = load_matrix(DATA / "inherit.yaml")
    assert matrix.project == "envplane"
    for name, env in matrix.environments.items():
        dumped = json.dumps(env.model_dump()) + json.dumps(matrix.strategy_for(name).model_dump())
        assert "sunday" not in dumped.lower()
        assert env.clusters[0].name == f"envplane-{name}"
    assert "sunday" not in str(matrix.templates_dir).lower()


def test_unknown_environment_suggests_the_closest() -> None:
    matrix = load_matrix(EXAMPLE)
    with pytest.raises(UnknownEnvironment) as info:
        matrix.environment("prodution")
    assert "did you mean 'production'" in str(info.value)
    assert info.value.hint is not None and "staging" in info.value.hint
    with pytest.raises(UnknownEnvironment):
        matrix.services_for("nope")


def test_line_of_points_into_the_file() -> None:
    matrix = load_matrix(EXAMPLE)
    lines = EXAMPLE.read_text().splitlines()
    line = matrix.line_of(("environments", "staging", "networking", "vpc_cidr"))
    assert line is not None and "10.1.0.0/16" in lines[line - 1]
    group = matrix.line_of(("environments", "production", "clusters", 0, "node_groups", 1))
    assert group is not None and "memory-optimized" in lines[group - 1]
    # Services are inherited from the top level: the line is where the value is written.
    port = matrix.line_of(("environments", "staging", "services", "backend", "port"))
    assert port is not None and lines[port - 1].strip() == "port: 3000"
    assert matrix.line_of(("no_such_key",)) is None
    err = matrix.error_at(("environments", "staging", "networking", "vpc_cidr"), "overlaps")
    assert str(err) == f"{EXAMPLE}:{line}: environments.staging.networking.vpc_cidr: overlaps"
