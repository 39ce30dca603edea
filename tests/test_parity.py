"""`envplane parity`: the Sunday example and the shop matrix (tests/paritykit.py), through the
real CLI; JSON and Markdown outputs as golden files (ENVPLANE_UPDATE_GOLDEN=1 rewrites them)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project
from tests.paritykit import check_golden, check_golden_json, line_of, shop_project

MATRIX = "config/environment-matrix.yaml"


@pytest.fixture
def shop() -> Iterator[Project]:
    yield from shop_project()


def _rows(doc: Any) -> dict[str, Any]:
    return {row["key"]: row for row in doc["settings"]}


def _json(project: Project, *args: str, code: int = 0) -> Any:
    result = project.run("parity", *args, "-o", "json")
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


# --- the Sunday example ----------------------------------------------------------------------


def test_sunday_passes_and_makes_sense(project: Project) -> None:
    doc = _json(project, "--all")
    assert doc["ok"] is True
    assert doc["environments"] == ["development", "staging", "production"]  # the pipeline's
    rows = _rows(doc)
    version = rows["databases.primary.version"]
    assert version["class"] == "equal"
    assert {v["value"] for v in version["values"].values()} == {"14.9"}
    log = rows["config.app-config.LOG_LEVEL"]
    assert log["class"] == "declared"
    assert "debug in development" in log["reason"]
    assert [v["value"] for v in log["values"].values()] == ["debug", "info", "warn"]
    assert log["values"]["staging"]["file"] == "templates/environments/staging/config.yaml"
    assert rows["services.backend.replicas"]["class"] == "scale"
    # Only through {{ENVIRONMENT_NAME}}: not a difference.
    assert rows["config.app-config.DEPLOYMENT_ENVIRONMENT"]["class"] == "equal"
    assert rows["config.backend-config.database.json"]["class"] == "equal"
    assert rows["clusters[0].name"]["class"] == "equal"

    check_golden_json("sunday.json", _json(project))
    markdown = project.run("parity", "-o", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    check_golden("sunday.md", markdown.stdout)


def test_sunday_without_its_declarations_reports_the_real_findings(project: Project) -> None:
    # The example's declarations of these two taken out again.
    kept = [
        line
        for line in project.matrix.read_text().splitlines()
        if "    security.network_policies:" not in line
        and "    config.app-config.LOG_LEVEL:" not in line
    ]
    project.matrix.write_text("\n".join(kept) + "\n")
    doc = _json(project, code=1)
    assert doc["ok"] is False
    rows = _rows(doc)
    policies = rows["security.network_policies"]
    assert policies["class"] == "undeclared"
    assert [v["value"] for v in policies["values"].values()] == ["disabled", "basic", "enabled"]
    # Each value located where it is written.
    written = project.matrix.read_text()
    prod_line = line_of(written, "network_policies: enabled", after="  production:")
    assert policies["values"]["production"] == {
        "value": "enabled", "set": True, "file": MATRIX, "line": prod_line, "default": False,
    }  # fmt: skip
    assert rows["config.app-config.LOG_LEVEL"]["class"] == "undeclared"
    assert rows["config.app-config.LOG_LEVEL"]["values"]["production"]["line"] == 12
    # The text report says the same, and exits 1.
    result = project.run("parity", "staging", "production")
    assert result.returncode == 1
    assert "security.network_policies" in result.stdout
    assert f"{MATRIX}:{prod_line}" in result.stdout
    assert "undeclared" in result.stdout.splitlines()[-1]


def test_sunday_two_environments_and_equal_values_hidden(project: Project) -> None:
    doc = _json(project, "production", "staging")
    assert doc["environments"] == ["production", "staging"]
    classes = {row["class"] for row in doc["settings"]}
    assert "equal" not in classes
    rows = _rows(doc)
    assert "databases.primary.version" not in rows
    assert rows["networking.availability_zones"]["class"] == "scale"


# --- the shop matrix: scale, declared, undeclared, extends, a ConfigMap key -------------------


def test_shop_classifies_every_kind(shop: Project) -> None:
    doc = _json(shop, code=1)
    assert doc["environments"] == ["qa-east", "live-east"]
    rows = _rows(doc)
    # Inherited through extends: qa-east's value is written in templates.small.
    roles = rows["security.iam_roles"]
    assert roles["class"] == "undeclared"
    text = shop.matrix.read_text()
    assert roles["values"]["qa-east"]["line"] == line_of(text, "iam_roles: standard")
    assert roles["values"]["live-east"]["line"] == line_of(text, "iam_roles: strict")
    # A rendered ConfigMap key that differs through a `variables:` value is a finding...
    feature = rows["config.app-config.FEATURE"]
    assert feature["class"] == "undeclared"
    assert feature["values"]["qa-east"]["file"] == "templates/environments/shop/config.yaml"
    assert feature["values"]["qa-east"]["line"] == 8
    # ...the variable itself is declared at the top level, the env value by one environment.
    assert rows["variables.FEATURE_X"]["class"] == "declared"
    assert (
        rows["services.web.env.MODE"]["reason"] == "live-east: qa-east runs the app in testing mode"
    )
    assert rows["networking.availability_zones"]["class"] == "scale"
    assert rows["services.web.replicas"]["class"] == "scale"
    assert rows["networking.vpc_cidr"]["class"] == "declared"
    assert doc["counts"] == {"equal": 33, "scale": 2, "declared": 3, "undeclared": 2}
    # a value differing only by {{ENVIRONMENT_NAME}} is not listed; a secret is a reference
    assert "config.app-config.GREETING" not in rows
    every = _rows(_json(shop, "--all", code=1))
    assert every["services.web.env.DB_PASSWORD"]["values"]["qa-east"]["value"] == {
        "secret": "db-password"
    }
    check_golden_json("shop.json", doc)
    markdown = shop.run("parity", "-o", "markdown")
    assert markdown.returncode == 1
    check_golden("shop.md", markdown.stdout)


def test_scale_list_is_editable(shop: Project) -> None:
    shop.edit_matrix(
        "parity:\n  allow:\n",
        "parity:\n  scale:\n    remove: [services.*.replicas]\n    add: [security.iam_roles]\n"
        "  allow:\n",
    )
    rows = _rows(_json(shop, code=1))
    assert rows["services.web.replicas"]["class"] == "undeclared"
    assert rows["security.iam_roles"]["class"] == "scale"


def test_declaring_the_rest_passes(shop: Project) -> None:
    shop.edit_matrix(
        "  allow:\n    variables.FEATURE_X:",
        '  allow:\n    config.app-config.FEATURE: "follows FEATURE_X"\n'
        '    security.*: "qa-east tests with standard roles"\n    variables.FEATURE_X:',
    )
    doc = _json(shop)
    assert doc["ok"] is True
    assert _rows(doc)["security.iam_roles"]["reason"] == "qa-east tests with standard roles"


# --- bad input --------------------------------------------------------------------------------


def test_unknown_environment_is_exit_2_with_a_suggestion(shop: Project) -> None:
    result = shop.run("parity", "qa-est")
    assert result.returncode == 2
    assert "no environment 'qa-est'" in result.stderr
    assert "did you mean 'qa-east'" in result.stderr
    assert "Traceback" not in result.stderr


def test_stale_declaration_is_exit_2_at_its_line(shop: Project) -> None:
    shop.edit_matrix(
        "    variables.FEATURE_X:", '    networking.vpc_cdir: "typo"\n    variables.FEATURE_X:'
    )
    result = shop.run("parity")
    assert result.returncode == 2
    line = line_of(shop.matrix.read_text(), "networking.vpc_cdir")
    assert f"{MATRIX}:{line}" in result.stderr
    assert "matches no setting" in result.stderr
    assert "did you mean 'networking.vpc_cidr'" in result.stderr
    as_json = shop.run("parity", "-o", "json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stderr)["exit_code"] == 2


def test_bad_scale_removal_and_bad_pattern_type(shop: Project) -> None:
    shop.edit_matrix("parity:\n  allow:\n", "parity:\n  scale:\n    remove: [replicas]\n  allow:\n")
    result = shop.run("parity")
    assert result.returncode == 2
    assert "not one of the default scale keys" in result.stderr
    shop.edit_matrix("    remove: [replicas]\n", "    remove: [services.*.replicas]\n")
    shop.edit_matrix('"qa tries the feature first"', "[not, a, reason]")
    result = shop.run("parity")
    assert result.returncode == 2
    assert "parity.allow" in result.stderr


# --- live -------------------------------------------------------------------------------------


def test_live_compares_what_runs(shop: Project) -> None:
    # No environment created yet: nothing runs to compare.
    nothing = shop.run("parity", "--live")
    assert nothing.returncode == 2
    assert "nothing runs" in nothing.stderr
    shop.edit_matrix(
        "    services:\n      web:\n        env:",
        '    services:\n      web:\n        version: "1.1.0"\n        env:',
    )
    created = shop.run("create", "qa-east", timeout=240)
    assert created.returncode == 0, created.stderr
    doc = _json(shop, "--live", "--all")  # one environment: nothing differs
    assert doc["source"] == "live"
    assert _rows(doc)["config.app-config.LOG_LEVEL"]["values"]["qa-east"]["value"] == "info"
    assert doc["environments"] == ["qa-east"]
    assert doc["not_created"] == ["live-east"]
    created = shop.run("create", "live-east", timeout=240)
    assert created.returncode == 0, created.stderr
    doc = _json(shop, "--live", code=1)
    rows = _rows(doc)
    version = rows["services.web.version"]
    assert {env: v["value"] for env, v in version["values"].items()} == {
        "qa-east": "1.1.0",
        "live-east": "1.0.0",
    }
    assert rows["config.app-config.FEATURE"]["class"] == "undeclared"
    assert "config.app-config.GREETING" not in rows  # same template, only the env name differs
    # A file edited behind envplane's back is what runs: it shows up.
    edited = shop.home / "environments" / "live-east" / "config" / "app-config" / "LOG_LEVEL"
    assert edited.read_text() == "info"
    edited.write_text("debug")
    rows = _rows(_json(shop, "--live", code=1))
    log = rows["config.app-config.LOG_LEVEL"]
    assert {env: v["value"] for env, v in log["values"].items()} == {
        "qa-east": "info",
        "live-east": "debug",
    }
    text = shop.run("parity", "--live")
    assert text.returncode == 1
    assert "1.1.0" in text.stdout and "1.0.0" in text.stdout


def test_a_secret_variable_is_compared_but_never_shown(shop: Project) -> None:
    template = shop.root / "templates" / "environments" / "shop" / "config.yaml"
    template.write_text(template.read_text() + '  TOKEN: "{{API_TOKEN}}"\n')
    shop.edit_matrix(
        '      FEATURE_X: "on"\n', '      FEATURE_X: "on"\n      API_TOKEN: "tok-qa-1"\n'
    )
    shop.edit_matrix(
        'variables:\n  FEATURE_X: "off"\n',
        'variables:\n  FEATURE_X: "off"\n  API_TOKEN: "tok-live-2"\n',
    )
    for output in ("json", "markdown", "text"):
        result = shop.run("parity", "--all", "-o", output)
        assert result.returncode == 1, result.stderr
        assert "tok-qa-1" not in result.stdout and "tok-live-2" not in result.stdout
    rows = _rows(_json(shop, code=1))
    assert rows["variables.API_TOKEN"]["class"] == "undeclared"  # they differ: still found
    assert "config.app-config.TOKEN" not in rows  # rendered with a stand-in, never the value
