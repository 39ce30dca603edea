"""`envplane explain ENV KEY.PATH`: every layer with its file:line, through the real CLI, on
the shop matrix (tests/paritykit.py: templates `base` <- `small` <- environment qa-east)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Project
from tests.paritykit import line_of, shop_project

MATRIX = "config/environment-matrix.yaml"
TEMPLATE = "templates/environments/shop/config.yaml"


@pytest.fixture
def shop() -> Iterator[Project]:
    yield from shop_project()


def _explain(project: Project, env: str, key: str) -> Any:
    result = project.run("explain", env, key, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _layers(doc: Any) -> list[tuple[str, str, str | None, int | None]]:
    return [(la["name"], la["value"], la["file"], la["line"]) for la in doc["layers"]]


def test_three_levels_of_inheritance_each_with_its_line(shop: Project) -> None:
    text = shop.matrix.read_text()
    doc = _explain(shop, "qa-east", "networking.availability_zones")
    assert doc["value"] == "1"
    assert _layers(doc) == [
        ("template base", "3", MATRIX, line_of(text, "availability_zones: 3")),
        ("template small", "2", MATRIX, line_of(text, "availability_zones: 2")),
        ("environment qa-east", "1", MATRIX, line_of(text, "availability_zones: 1")),
    ]
    assert [la["wins"] for la in doc["layers"]] == [False, False, True]
    # The text output names the same layers and lines, the winner marked.
    result = shop.run("explain", "qa-east", "networking.availability_zones")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "qa-east networking.availability_zones = 1"
    assert lines[-1].lstrip().startswith("→ environment qa-east")
    assert lines[-1].endswith(f"{MATRIX}:{line_of(text, 'availability_zones: 1')}")


def test_inherited_value_names_the_template_that_wins(shop: Project) -> None:
    text = shop.matrix.read_text()
    doc = _explain(shop, "qa-east", "security.iam_roles")
    assert _layers(doc) == [
        ("template base", "strict", MATRIX, line_of(text, "iam_roles: strict")),
        ("template small", "standard", MATRIX, line_of(text, "iam_roles: standard")),
    ]
    assert doc["layers"][-1]["wins"] is True


def test_top_level_services_then_the_environment_and_defaults(shop: Project) -> None:
    text = shop.matrix.read_text()
    doc = _explain(shop, "qa-east", "services.web.env.MODE")
    assert _layers(doc) == [
        ("top-level `services:`", "normal", MATRIX, line_of(text, "MODE: normal")),
        ("environment qa-east", "testing", MATRIX, line_of(text, "MODE: testing")),
    ]
    default = _explain(shop, "live-east", "services.web.health_path")
    assert _layers(default) == [("envplane default", "/health", None, None)]
    secret = _explain(shop, "live-east", "services.web.env.DB_PASSWORD")
    assert secret["value"] == "{secret: db-password}"


def test_configmap_key_names_template_line_and_variables(shop: Project) -> None:
    text = shop.matrix.read_text()
    doc = _explain(shop, "live-east", "config.app-config.FEATURE")
    assert doc["value"] == "off"
    assert _layers(doc) == [("template shop", "off", TEMPLATE, 8)]
    assert doc["variables"] == [
        {
            "name": "FEATURE_X",
            "value": "off",
            "origin": "matrix",
            "file": MATRIX,
            "line": line_of(text, 'FEATURE_X: "off"', after="  live-east:"),
        }
    ]
    greeting = _explain(shop, "qa-east", "config.app-config.GREETING")
    assert greeting["variables"] == [
        {
            "name": "ENVIRONMENT_NAME",
            "value": "qa-east",
            "origin": "envplane",
            "file": None,
            "line": None,
        }
    ]


def test_a_secret_variable_is_never_shown(shop: Project) -> None:
    template = shop.root / TEMPLATE
    template.write_text(template.read_text() + '  TOKEN: "{{API_TOKEN}}"\n')
    shop.edit_matrix(
        'variables:\n  FEATURE_X: "off"\n',
        'variables:\n  FEATURE_X: "off"\n  API_TOKEN: "tok-4711"\n',
    )
    for output in ("json", "text"):
        result = shop.run("explain", "qa-east", "config.app-config.TOKEN", "-o", output)
        assert result.returncode == 0, result.stderr
        assert "tok-4711" not in result.stdout
        assert "(secret, not shown)" in result.stdout
    result = shop.run("explain", "qa-east", "variables.API_TOKEN")
    assert result.returncode == 0, result.stderr
    assert "tok-4711" not in result.stdout


def test_unknown_key_and_environment_are_exit_2(shop: Project) -> None:
    result = shop.run("explain", "qa-east", "networking.availability_zone")
    assert result.returncode == 2
    assert "did you mean 'networking.availability_zones'" in result.stderr
    assert "Traceback" not in result.stderr
    result = shop.run("explain", "qa-eats", "networking.availability_zones")
    assert result.returncode == 2
    assert "did you mean 'qa-east'" in result.stderr


def test_a_clone_is_explained_from_its_recorded_definition(shop: Project) -> None:
    created = shop.run("create", "qa-east", timeout=240)
    assert created.returncode == 0, created.stderr
    cloned = shop.run("clone", "qa-east", "qa-copy", timeout=240)
    assert cloned.returncode == 0, cloned.stderr
    text = shop.matrix.read_text()
    doc = _explain(shop, "qa-copy", "networking.availability_zones")
    assert _layers(doc) == [
        ("template base", "3", MATRIX, line_of(text, "availability_zones: 3")),
        ("template small", "2", MATRIX, line_of(text, "availability_zones: 2")),
        ("extends qa-east", "1", MATRIX, line_of(text, "availability_zones: 1")),
    ]


def test_plan_names_the_line_behind_each_changed_field(shop: Project) -> None:
    created = shop.run("create", "qa-east", timeout=240)
    assert created.returncode == 0, created.stderr
    shop.edit_matrix("          MODE: testing\n", "          MODE: testing\n        replicas: 2\n")
    template = shop.root / TEMPLATE
    template.write_text(template.read_text().replace('LOG_LEVEL: "info"', 'LOG_LEVEL: "debug"'))
    result = shop.run("plan", "qa-east", "-o", "json")
    assert result.returncode == 0, result.stderr
    changes = {
        (step["resource"], change["path"]): change
        for step in json.loads(result.stdout)["steps"]
        for change in step["changes"]
    }
    text = shop.matrix.read_text()
    replicas = {
        "file": MATRIX,
        "line": line_of(text, "replicas: 2"),
        "key": "environments.qa-east.services.web.replicas",
    }
    assert changes[("service/web", "replicas")]["cause"] == replicas
    assert changes[("service/web", "ports")]["cause"] == replicas
    log = {"file": TEMPLATE, "line": 9, "key": "config.app-config.LOG_LEVEL"}
    assert changes[("config/config", "files.app-config/LOG_LEVEL")]["cause"] == log
    assert changes[("service/web", "env.LOG_LEVEL")]["cause"] == log
    printed = shop.run("plan", "qa-east")
    assert printed.returncode == 0, printed.stderr
    assert f"replicas: 1 -> 2  (from {MATRIX}:{replicas['line']} " in printed.stdout
    assert f"(from {TEMPLATE}:9 config.app-config.LOG_LEVEL)" in printed.stdout
