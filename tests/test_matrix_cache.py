"""The cache of validated matrices (matrix/cache.py): a second load of an unchanged file takes
its validated copy; anything else — an edit, an error, an entry not written by envplane, a
directory others can write — loads from the file, and the result is always what the file says."""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix import Matrix, load_matrix_text
from envplane.matrix.cache import KEEP, load_cached
from tests.conftest import EXAMPLE, Project

TEXT = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()


class Counting:
    """load_matrix_text, counting how often the file really had to be loaded."""

    def __init__(self) -> None:
        self.builds = 0

    def __call__(self, text: str, filename: str) -> Matrix:
        self.builds += 1
        return load_matrix_text(text, filename)


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pickle"))


def same(a: Matrix, b: Matrix) -> None:
    assert a.environments == b.environments
    assert a.deployment_strategies == b.deployment_strategies
    assert a.raw == b.raw
    key = ("environments", "production", "databases", "primary", "instance_class")
    assert a.line_of(key) == b.line_of(key) is not None
    assert a.templates_dir == b.templates_dir


def test_an_unchanged_matrix_is_taken_from_the_cache_and_is_the_same(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    first = load_cached(TEXT, "/p/config/environment-matrix.yaml", cache, build)
    second = load_cached(TEXT, "/p/config/environment-matrix.yaml", cache, build)
    assert build.builds == 1
    same(first, second)
    assert second.pipeline() == ["development", "staging", "production"]
    # The copy derives environments like the original (a preview is built on it).
    preview = second.with_environment("pr-1", "staging")
    assert preview.environment("pr-1").regions == first.environment("staging").regions
    assert (cache / "key").stat().st_mode & 0o777 == 0o600
    assert [p.stat().st_mode & 0o777 for p in entries(cache)] == [0o600]


def test_an_edit_or_another_path_loads_from_the_file(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    load_cached(TEXT, "/p/m.yaml", cache, build)
    edited = TEXT.replace("instance_class: db.r5.4xlarge", "instance_class: db.r5.2xlarge", 1)
    assert edited != TEXT
    again = load_cached(edited, "/p/m.yaml", cache, build)
    elsewhere = load_cached(TEXT, "/q/m.yaml", cache, build)
    assert build.builds == 3
    assert again.environment("production").databases.primary.instance_class == "db.r5.2xlarge"
    assert str(elsewhere.path) == "/q/m.yaml"


def test_a_matrix_with_an_error_is_never_stored_and_fails_every_time(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    broken = TEXT.replace("project:", "projekt:", 1)
    for _ in range(2):
        with pytest.raises(MatrixError) as err:
            load_cached(broken, "m.yaml", cache, build)
        assert "projekt" in str(err.value)
    assert build.builds == 2
    assert not cache.exists()  # nothing is made for a matrix that did not load


def test_an_entry_not_written_by_envplane_is_never_unpickled(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    load_cached(TEXT, "m.yaml", cache, build)
    [entry] = entries(cache)
    planted = tmp_path / "planted"

    class Evil:
        def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
            return (os.mkdir, (str(planted),))

    # Same length of MAC as envplane writes, but made without the home's key.
    entry.write_bytes(b"\0" * 32 + pickle.dumps(Evil()))
    matrix = load_cached(TEXT, "m.yaml", cache, build)
    assert not planted.exists()
    assert build.builds == 2 and matrix.project == load_matrix_text(TEXT, "m.yaml").project
    # ...and the entry was written again by envplane: the next load is a hit.
    load_cached(TEXT, "m.yaml", cache, build)
    assert build.builds == 2


def test_a_damaged_entry_loads_from_the_file(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    load_cached(TEXT, "m.yaml", cache, build)
    [entry] = entries(cache)
    blob = bytearray(entry.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    entry.write_bytes(bytes(blob))
    same(load_cached(TEXT, "m.yaml", cache, build), load_matrix_text(TEXT, "m.yaml"))
    assert build.builds == 2


@pytest.mark.parametrize("what", ["directory", "entry", "key"])
def test_nothing_others_can_write_is_trusted(tmp_path: Path, what: str) -> None:
    cache, build = tmp_path / "cache", Counting()
    load_cached(TEXT, "m.yaml", cache, build)
    [entry] = entries(cache)
    {"directory": cache, "entry": entry, "key": cache / "key"}[what].chmod(
        0o777 if what == "directory" else 0o666
    )
    for _ in range(2):
        same(load_cached(TEXT, "m.yaml", cache, build), load_matrix_text(TEXT, "m.yaml"))
    if what == "entry":  # replaced by one of envplane's own, read by the second load
        assert build.builds == 2 and entry.stat().st_mode & 0o777 == 0o600
    else:
        assert build.builds == 3  # each load from the file: there is no key to trust


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocked = tmp_path / "file"  # root writes anywhere: a file where the directory goes
        blocked.write_text("")
        cache = blocked / "cache"
    else:
        tmp_path.chmod(0o500)
        cache = tmp_path / "cache"
    build = Counting()
    try:
        for _ in range(2):
            assert load_cached(TEXT, "m.yaml", cache, build).project
    finally:
        tmp_path.chmod(0o700)
    assert build.builds == 2


def test_only_the_last_entries_are_kept(tmp_path: Path) -> None:
    cache, build = tmp_path / "cache", Counting()
    for i in range(KEEP + 3):
        load_cached(TEXT + f"# {i}\n", "m.yaml", cache, build)
    assert len(entries(cache)) == KEEP
    load_cached(TEXT + f"# {KEEP + 2}\n", "m.yaml", cache, build)  # the last one: still there
    assert build.builds == KEEP + 3


def test_templates_beside_the_matrix_are_found_even_from_a_cached_copy(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / "config").mkdir(parents=True)
    filename = str(root / "config" / "environment-matrix.yaml")
    cache, build = tmp_path / "cache", Counting()
    assert load_cached(TEXT, filename, cache, build).templates_dir == root / "templates"
    (root / "config" / "templates").mkdir()
    assert load_cached(TEXT, filename, cache, build).templates_dir == (
        root / "config" / "templates"
    )
    assert build.builds == 1


def test_the_cli_sees_every_edit_of_the_matrix(project: Project) -> None:
    first = project.run("check")
    assert first.returncode == 0, first.stderr
    assert list((project.home / "cache" / "matrix").glob("*.pickle"))
    assert project.run("check").stdout == first.stdout
    project.edit_matrix("    multi_az: true\n", "    multi_az: maybe\n")
    bad = project.run("check")
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "multi_az" in bad.stderr and "environment-matrix.yaml:" in bad.stderr
    shutil.rmtree(project.home / "cache")  # and without a cache, the same answer
    assert project.run("check").stderr == bad.stderr
