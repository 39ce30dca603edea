"""load_matrix on real files: every way a file can be wrong is a MatrixError, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from envplane.errors import EXIT_BAD_INPUT, MatrixError
from envplane.matrix import load_matrix

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
