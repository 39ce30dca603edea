"""load_matrix on real files: every way a file can be wrong is a MatrixError, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envplane.errors import EXIT_BAD_INPUT, MatrixError
from envplane.matrix import load_matrix, load_matrix_text

SEED = Path(__file__).parent / "data" / "matrix" / "seed.yaml"


def refused(path: Path, fragment: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        load_matrix(path)
    assert str(info.value).startswith(str(path)), str(info.value)
    assert fragment in str(info.value), str(info.value)
    assert info.value.exit_code == EXIT_BAD_INPUT
    return info.value


def test_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    err = refused(tmp_path / "nope.yaml", "file not found")
    assert err.hint is not None and "ENVPLANE_MATRIX" in err.hint


def test_directory(tmp_path: Path) -> None:
    refused(tmp_path, "directory")


def test_nul_in_path() -> None:
    refused(Path("bad\0name.yaml"), "cannot read")


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"environments:\n  dev: \xff\xfe\n")
    err = refused(path, "not UTF-8")
    assert err.line == 2


def test_huge_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("# padding\n" * 300_000)
    refused(path, "larger than")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    refused(path, "cannot read")


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + SEED.read_bytes())
    matrix = load_matrix(path)
    assert matrix.path == path and next(iter(matrix.environments)) == "production"


def test_templates_dir_default_and_setting(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    path = config / "environment-matrix.yaml"
    path.write_text(SEED.read_text())
    assert load_matrix(path).templates_dir == tmp_path / "templates"  # beside config/
    (config / "templates").mkdir()
    assert load_matrix(path).templates_dir == config / "templates"  # beside the file wins
    path.write_text(SEED.read_text() + "templates_dir: ../tpl\n")
    assert load_matrix(path).templates_dir == config / "../tpl"


# --- issue 9: located where written (item 19), names (item 19), honest size (item 18) --------

INHERIT = (Path(__file__).parent / "data" / "matrix" / "inherit.yaml").read_text()
SERVICES = """services:
  web:
    command: "{python} -m http.server"
    env: {A: "1"}
"""


def services_last(services: str = SERVICES) -> str:
    """inherit.yaml with `services:` at the end, after the environments that override it (as
    in the example): an environment's copy comes first in the file."""
    assert SERVICES in INHERIT
    return INHERIT.replace(SERVICES, "") + services


def line_of(text: str, needle: str, after: str | None = None) -> int:
    lines = text.splitlines()
    start = lines.index(after) if after is not None else 0
    return next(n for n, line in enumerate(lines[start:], start + 1) if line == needle)


def load_refused(text: str) -> MatrixError:
    with pytest.raises(MatrixError) as info:
        load_matrix_text(text, "m.yaml")
    return info.value


def test_a_service_without_command_or_image_is_reported_at_the_top_level_service() -> None:
    text = services_last(SERVICES.replace('    command: "{python} -m http.server"\n', ""))
    err = load_refused(text)
    assert (err.line, err.key) == (line_of(text, "  web:", after="services:"), "services.web")
    assert "needs a `command`" in err.detail
    # The environments that override web (dev, qa-env) inherit the same problem: said once.
    assert err.hint is None, err.hint


def test_a_key_written_nowhere_is_reported_where_its_mapping_is_declared() -> None:
    # dev overrides databases.primary; the template that declares it lacks `version`.
    text = INHERIT.replace('        version: "16"\n', "").replace(
        "    extends: base\n", "    extends: base\n    databases: {primary: {multi_az: true}}\n"
    )
    err = load_refused(text)
    assert err.key == "templates.base.databases.primary.version", str(err)
    assert err.line == line_of(text, "      primary:")
    assert "required key 'version' is missing" in err.detail


@pytest.mark.parametrize(
    ("renames", "name"),
    [
        ({"  dev:\n": "  -rf:\n", "extends: dev\n": "extends: -rf\n"}, "-rf"),
        ({"  dev:\n": "  rf-:\n", "extends: dev\n": "extends: rf-\n"}, "rf-"),
        ({"  base:\n": "  base-:\n", "extends: base\n": "extends: base-\n"}, "base-"),
        ({"      web: {": "      web-: {", "\n  web:\n": "\n  web-:\n"}, "web-"),
    ],
)
def test_names_may_not_begin_or_end_with_a_dash(renames: dict[str, str], name: str) -> None:
    """They would read as options to the tools envplane runs (initdb, nginx, terraform...)."""
    text = services_last()
    for old, new in renames.items():
        assert old in text
        text = text.replace(old, new)
    err = load_refused(text)
    first = next(n for n, line in enumerate(text.splitlines(), 1) if f" {name}:" in line)
    assert err.line == first and err.key is not None and err.key.endswith(f".{name}"), str(err)
    assert f"{name!r}: a name may not begin or end with '-'" in err.detail, str(err)


def test_an_environment_name_that_cannot_name_its_templates_is_refused_located() -> None:
    # `1dev` is a valid environment name, and its templates default to templates/environments/
    # 1dev, which the renderers refuse (a template name starts with a letter): said at load.
    text = INHERIT.replace("  dev:\n", "  1dev:\n").replace("extends: dev", "extends: 1dev")
    err = load_refused(text)
    assert (err.line, err.key) == (line_of(text, "  1dev:"), "environments.1dev.template")
    assert "set `template:`" in err.detail
    assert load_matrix_text(text.replace("  1dev:\n", "  1dev:\n    template: dev\n"), "m.yaml")


def generated(count: int) -> str:
    """A matrix of `count` environments built with `extends:`: a template, chains of ten."""
    lines = [*INHERIT.split("environments:\n")[0].splitlines(), "environments:"]
    for i in range(count):
        parent = "base" if i % 10 == 0 else f"env-{i - 1:04d}"
        lines += [
            f"  env-{i:04d}:",
            f"    extends: {parent}",
            f"    variables: {{GREETING: hi-{i}, OWNER: team-{i % 7}}}",
            "    regions: {primary: eu-west-1, secondary: eu-central-1}",
            "    storage: {versioning: disabled, lifecycle_policies: enabled}",
            f"    databases: {{primary: {{backup_retention: {i % 30}, multi_az: true}}}}",
            f"    services: {{web: {{replicas: {1 + i % 3}, env: {{SHARD: '{i}'}}}}}}",
        ]
    return "\n".join(lines) + "\n"


def test_a_thousand_environments_built_with_extends_load() -> None:
    """Their honest size (about 40,000 nodes) is no alias bomb (issue 9, item 18)."""
    matrix = load_matrix_text(generated(1000), "m.yaml")
    assert len(matrix.environments) == 1000
    last = matrix.environment("env-0999")
    assert last.databases is not None and last.databases.primary is not None
    assert (last.databases.primary.backup_retention, last.databases.primary.version) == (9, "16")
    assert matrix.services_for("env-0999")["web"].replicas == 1
    assert matrix.services_for("env-0999")["web"].env == {"A": "1", "SHARD": "999"}
    assert matrix.line_of(("environments", "env-0999", "databases", "primary", "version")) == (
        line_of(INHERIT, '        version: "16"')
    )
