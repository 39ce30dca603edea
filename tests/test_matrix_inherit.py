"""`extends:`, templates, service overrides and variables; errors keep pointing at real lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from envplane.errors import BadInput, InvalidName, MatrixError
from envplane.matrix import load_matrix, load_matrix_text

FILE = Path(__file__).parent / "data" / "matrix" / "inherit.yaml"
TEXT = FILE.read_text()
NAME = "inherit.yaml"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def fails(text: str, needle: str, key: str, fragment: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, NAME)
    assert str(info.value).startswith(f"{NAME}:{line_of(text, needle)}: {key}: "), str(info.value)
    assert fragment in str(info.value), str(info.value)
    return info.value


def test_environment_gets_template_values_and_overrides_them() -> None:
    matrix = load_matrix(FILE)
    dev, qa = matrix.environment("dev"), matrix.environment("qa-env")
    assert dev.extends == "base" and qa.extends == "dev"
    assert dev.regions.primary == qa.regions.primary == "eu-west-1"
    assert dev.storage.versioning == "disabled"
    assert qa.storage.versioning == "enabled"  # child wins; YAML true reads as enabled
    assert qa.storage.encryption == "AES256"  # sibling keys still inherited (deep merge)
    assert qa.databases.primary.version == "16"


def test_template_directory_names() -> None:
    matrix = load_matrix(FILE)
    assert matrix.environment("dev").template == "dev"
    assert matrix.environment("qa-env").template == "shared"


def test_unnamed_clusters_are_named_after_project_and_environment() -> None:
    matrix = load_matrix(FILE)
    assert [c.name for c in matrix.environment("qa-env").clusters] == ["envplane-qa-env"]
    assert matrix.environment("dev").clusters[0].region == "eu-west-1"
    named = load_matrix_text("project: shop\n" + TEXT, NAME)
    assert named.environment("dev").clusters[0].name == "shop-dev"


def test_services_and_variables_merge_top_level_then_environment() -> None:
    matrix = load_matrix(FILE)
    web = matrix.services_for("qa-env")["web"]
    assert web.command == ["{python}", "-m", "http.server"]  # a string is split like a shell
    assert web.replicas == 2 and web.env == {"A": "1", "B": "2"}
    assert matrix.services_for("dev")["web"].replicas == 1
    assert matrix.services["web"].env == {"A": "1"}  # the top level itself is untouched
    assert matrix.variables_for("dev") == {"GREETING": "hi", "SENTRY_DSN": ""}
    assert matrix.variables_for("qa-env")["GREETING"] == "hi"
    assert matrix.strategy_for("qa-env").primary == "canary"


def test_lists_are_replaced_not_merged() -> None:
    text = TEXT.replace(
        "    storage: {versioning: true}\n",
        "    storage: {versioning: true}\n    clusters:\n      - name: qa\n"
        "        node_groups: []\n",
    )
    clusters = load_matrix_text(text, NAME).environment("qa-env").clusters
    assert [(c.name, c.node_groups) for c in clusters] == [("qa", [])]


def test_error_in_a_template_points_at_the_template_line() -> None:
    text = TEXT.replace("num_cache_nodes: 1", "num_cache_nodes: 0")
    fails(
        text,
        "num_cache_nodes: 0",
        "templates.base.databases.cache.num_cache_nodes",
        "greater than or equal to 1",
    )


def test_inherited_error_names_where_the_value_is_written() -> None:
    # Sizes are checked only once whole: the inheriting environment reports, at the template line.
    text = TEXT.replace("min_size: 1, max_size: 3", "min_size: 4, max_size: 3")
    fails(
        text,
        "min_size: 4",
        "environments.dev.clusters[0].node_groups[0].max_size",
        "below min_size 4 (set at templates.base.clusters[0].node_groups[0].max_size)",
    )


def test_unknown_key_in_an_unused_template_is_still_found() -> None:
    text = TEXT.replace("templates:\n", "templates:\n  spare:\n    netwrking: {}\n")
    fails(text, "netwrking", "templates.spare.netwrking", "did you mean 'networking'?")


def test_extends_unknown_name_suggests() -> None:
    fails(
        TEXT.replace("extends: base", "extends: bsae"),
        "extends: bsae",
        "environments.dev.extends",
        "(did you mean 'base'?)",
    )


def test_extends_cycle_is_refused() -> None:
    text = TEXT.replace("extends: base", "extends: qa-env")
    err = fails(text, "extends: dev", "environments.qa-env.extends", "dev -> qa-env -> dev")
    assert "circle" in str(err)


def test_self_extension_and_template_cycles() -> None:
    fails(
        TEXT.replace("extends: base", "extends: dev"),
        "extends: dev",
        "environments.dev.extends",
        "dev -> dev",
    )
    text = TEXT.replace("  base:\n", "  base:\n    extends: other\n").replace(
        "templates:\n", "templates:\n  other:\n    extends: base\n"
    )
    fails(text, "extends: base", "templates.other.extends", "circle")


def test_extends_must_be_a_name_of_a_mapping() -> None:
    fails(
        TEXT.replace("extends: base", "extends: [base]"),
        "extends: [base]",
        "environments.dev.extends",
        "must name",
    )
    text = TEXT.replace("templates:\n", "templates:\n  empty:\n").replace(
        "extends: base", "extends: empty"
    )
    fails(text, "extends: empty", "environments.dev.extends", "not a mapping")


def test_template_and_environment_may_not_share_a_name() -> None:
    text = TEXT.replace("templates:\n  base:", "templates:\n  dev:").replace(
        "extends: base", "extends: dev"
    )
    fails(text, "  dev:", "templates.dev", "has the name of an environment")


def test_override_of_undeclared_service() -> None:
    text = TEXT.replace("      web: {replicas: 2}", "      wbe: {replicas: 2}")
    fails(text, "wbe:", "environments.qa-env.services.wbe", "(did you mean 'web'?)")


def test_bad_override_is_located_at_the_override() -> None:
    text = TEXT.replace("web: {replicas: 2}", "web: {replicas: -2}")
    fails(text, "replicas: -2", "environments.qa-env.services.web.replicas", "greater than")


def test_with_environment_adds_a_preview() -> None:
    matrix = load_matrix(FILE)
    preview = matrix.with_environment("pr-42", "qa-env", {"variables": {"GREETING": "pr"}})
    env = preview.environment("pr-42")
    assert env.template == "shared" and env.clusters[0].name == "envplane-pr-42"
    assert preview.variables_for("pr-42")["GREETING"] == "pr"
    assert preview.strategy_for("pr-42").primary == "rolling"
    assert "pr-42" not in matrix.environments  # the original is unchanged
    with pytest.raises(InvalidName):
        matrix.with_environment("PR_42", "dev")
    with pytest.raises(BadInput):
        matrix.with_environment("dev", "qa-env")
    with pytest.raises(MatrixError):
        matrix.with_environment("pr-43", "nowhere")
