"""What create would refuse, check and plan refuse first (issue 9, item 4): the local target's
requirements of the desired state and of ENVPLANE_HOME are one function (`Target.check`),
asked by `check`, `plan` and `create` before anything is recorded, each problem located where
its value is written (a top-level service's key, not an environment's copy of it)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from envplane.matrix import load_matrix_text
from envplane.render.local import desired_local, port_keys
from envplane.targets.base import Problem
from envplane.targets.local import LocalTarget
from tests.conftest import EXAMPLE, Project, open_tmpdir
from tests.support import processes_under

COMMAND_LINE = '    command: ["{python}", "app/backend.py"]\n'


def line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line == needle)


def services_backend_line(project: Project) -> int:
    """The line of `  backend:` under the top-level `services:` (not an environment's)."""
    text = project.matrix.read_text()
    top = line_of(text, "services:")
    return top + 1 + text.splitlines()[top:].index("  backend:")


def located_at_backend_command(project: Project) -> str:
    return f"environment-matrix.yaml:{services_backend_line(project)}: services.backend.command:"


def nothing_recorded(project: Project, env: str = "development") -> None:
    listed = project.run("list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert {e["name"]: e["status"] for e in json.loads(listed.stdout)}[env] == "not created"
    assert not (project.home / "environments" / env).exists()
    assert processes_under(project.home) == []


@pytest.fixture
def image_only(project: Project) -> Project:
    """The example with a backend that has an image but no command (fine for the cloud)."""
    project.edit_matrix(COMMAND_LINE, "")
    return project


def test_image_only_service_is_refused_by_check_at_the_top_level_service(
    image_only: Project,
) -> None:
    result = image_only.run("check")
    assert result.returncode == 2, (result.stdout, result.stderr)
    where = located_at_backend_command(image_only)
    assert where in result.stderr, result.stderr
    assert "no `command`" in result.stderr and "Traceback" not in result.stderr
    # One problem written once, not one per environment that inherits it.
    assert "more problem" not in result.stderr


@pytest.mark.parametrize("env", ["development", "production"])  # production overrides backend
def test_image_only_service_is_refused_by_plan(image_only: Project, env: str) -> None:
    result = image_only.run("plan", env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    where = located_at_backend_command(image_only)
    assert where in result.stderr, result.stderr


def test_image_only_service_is_fine_for_the_cloud(image_only: Project) -> None:
    result = image_only.run("plan", "staging", "--target", "cloud")
    assert result.returncode == 0, result.stderr


def test_create_of_an_image_only_service_records_and_starts_nothing(image_only: Project) -> None:
    result = image_only.run("create", "development")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "services.backend.command" in result.stderr
    assert "[1/" not in result.stderr + result.stdout  # no step ran
    nothing_recorded(image_only)


@pytest.fixture
def private_home(project: Project) -> Iterator[Project]:
    """The example with ENVPLANE_HOME under a directory only root may traverse (pytest's own
    tmp_path is such a directory)."""
    if os.geteuid() != 0:
        pytest.skip("the environment's processes run as another user only under root")
    private = open_tmpdir("envplane-private-")
    private.chmod(0o700)
    try:
        yield Project(root=project.root, home=private / "home")
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.parametrize("args", [["check"], ["plan", "development"], ["create", "development"]])
def test_a_home_the_run_user_cannot_reach_is_refused_first(
    private_home: Project, args: list[str]
) -> None:
    result = private_home.run(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    blocked = private_home.home.parent
    # As root each environment runs as a user of its own, not made yet: judged as "others".
    assert f"directory {blocked} is not traversable by other users" in result.stderr
    assert f"chmod o+x {blocked}" in result.stderr
    assert "Traceback" not in result.stderr
    nothing_recorded(private_home)


def test_a_home_with_a_space_is_refused_naming_supervisord(project: Project) -> None:
    spaced = open_tmpdir("envplane-spaced-")
    try:
        home = Project(root=project.root, home=spaced / "my home")
        for args in (["check"], ["plan", "development"], ["create", "development"]):
            result = home.run(*args)
            assert result.returncode == 2, (args, result.stdout, result.stderr)
            assert "contains a space" in result.stderr and "[include] files=" in result.stderr
        nothing_recorded(home)
    finally:
        shutil.rmtree(spaced, ignore_errors=True)


@pytest.fixture
def base() -> Iterator[Path]:
    """A project root and an ENVPLANE_HOME the run user can reach (pytest's tmp_path is 0700)."""
    path = open_tmpdir("envplane-check-")
    (path / "config").mkdir()
    (path / "templates").symlink_to(EXAMPLE / "templates")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def local_problems(base: Path, text: str, env: str, **ports: int) -> list[Problem]:
    matrix = load_matrix_text(text, str(base / "config" / "m.yaml"))
    env_dir = base / "home" / "environments" / env
    allocated = {key: 21000 + n for n, key in enumerate(port_keys(matrix, env))}
    desired = desired_local(matrix, env, env_dir=env_dir, ports={**allocated, **ports})
    return LocalTarget().check(desired, env_dir)


SOURCE = (EXAMPLE / "config" / "environment-matrix.yaml").read_text()


def test_the_local_target_reports_problems_at_matrix_keys(base: Path) -> None:
    """The driver's own answer, as `check`, `plan` and `create` get it."""
    text = SOURCE.replace(COMMAND_LINE, "")
    problems = local_problems(base, text, "staging")
    assert [p.at for p in problems] == [("services", "backend", "command")]
    matrix = load_matrix_text(text, "m.yaml")
    error = matrix.error_at(("environments", "staging", *problems[0].at), problems[0].message)
    assert error.key == "services.backend.command"  # where it is to be written
    assert error.line == text.splitlines().index("  backend:", line_of(text, "services:")) + 1


def test_the_example_has_no_problem(base: Path) -> None:
    assert local_problems(base, SOURCE, "development") == []


def test_clashing_ports_are_a_problem(base: Path) -> None:
    problems = local_problems(base, SOURCE, "development", redis=21000)
    assert [p.at for p in problems] == [None]
    assert "port 21000 is given to both" in problems[0].message


def test_ports_are_allocated_below_the_ephemeral_range() -> None:
    """An outgoing connection takes its source port from the ephemeral range: a port handed out
    there could be taken before the server binds it. Allocated ports stay below it, distinct,
    and never one another environment recorded."""
    from pathlib import Path

    from envplane.ports import allocate

    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    taken = set(range(20000, 20100))
    got = allocate([f"k{i}" for i in range(40)], taken)
    assert len(set(got.values())) == 40
    assert all(20000 <= p < low and p not in taken for p in got.values())
