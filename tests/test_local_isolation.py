"""Issue 9, item 10: environments cannot read each other's secrets.

As root, each environment runs as a system user of its own (`envplane-<env>`), created with
it and removed by its destroy; its directory is 0700 and owned by that user. As an ordinary
user nothing switches: every environment runs as that user (README, "The local target").
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest

from envplane.targets.local.runas import run_user
from tests.conftest import Project, open_tmpdir
from tests.support import teardown_project

# Environments of nothing but object storage: a supervisord and nginx, made in a second.
TINY_MATRIX = """\
project: shop
environments:
  tiny-one:
    regions:
      primary: us-east-1
    storage:
      type: s3
      versioning: enabled
      encryption: AES256
  tiny-two:
    regions:
      primary: us-east-1
    storage:
      type: s3
      versioning: enabled
      encryption: AES256
"""

ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="environments get users of their own only when envplane runs as root; as an "
    "ordinary user they share it (test_an_ordinary_user_runs_every_environment_as_itself)",
)


def _processes(env_dir: Path) -> dict[int, str]:
    """pid -> command line of the environment's supervisord and everything under it (redis
    rewrites its title over its environment, so the ENVPLANE_ENV_DIR marker cannot find it)."""
    from envplane.targets.local import procs

    root = int((env_dir / "run" / "supervisord.pid").read_text())
    found = {}
    for pid in procs.process_tree(root):
        info = procs.proc_info(pid)
        if info is not None:
            found[pid] = info.cmdline
    return found


def _pid_of(env_dir: Path, part: str) -> int:
    pids = [pid for pid, cmd in _processes(env_dir).items() if part in cmd]
    assert len(pids) == 1, _processes(env_dir)
    return pids[0]


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective = line.split()[1:3]
            assert real == effective
            return int(real)
    raise AssertionError(f"no Uid line for pid {pid}")


def _read_as(uid: int, path: Path) -> subprocess.CompletedProcess[str]:
    entry = pwd.getpwuid(uid)
    return subprocess.run(
        ["cat", "--", str(path)],
        capture_output=True,
        text=True,
        check=False,
        user=uid,
        group=entry.pw_gid,
        extra_groups=[],
    )


@ROOT_ONLY
def test_each_environment_runs_as_its_own_user(project: Project) -> None:
    assert project.run("create", "development").returncode == 0
    cloned = project.run("clone", "development", "dev-two")
    assert cloned.returncode == 0, cloned.stderr
    a = project.home / "environments" / "development"
    b = project.home / "environments" / "dev-two"

    # The attack of the issue: A's app reads B's secrets, as A's processes run.
    uid_a, uid_b = _uid(_pid_of(a, "redis-server")), _uid(_pid_of(b, "redis-server"))
    secrets = [b / "etc" / "redis.conf", *sorted((b / "run" / "programs").glob("*.json"))]
    assert len(secrets) > 3
    secrets.append(Path(f"/proc/{_pid_of(b, 'app/backend.py')}/environ"))  # its DATABASE_URL
    for path in secrets:
        read = _read_as(uid_a, path)
        assert read.returncode != 0 and "Permission denied" in read.stderr, (path, read.stdout)
    assert _read_as(uid_b, b / "etc" / "redis.conf").returncode == 0  # B's own user reads it

    names = {env: _own_name(env, d) for env, d in (("development", a), ("dev-two", b))}
    for env, env_dir, uid in (("development", a, uid_a), ("dev-two", b, uid_b)):
        user = pwd.getpwuid(uid)
        assert user.pw_name == names[env]
        assert user.pw_gecos.startswith(f"envplane environment {env} ")
        assert user.pw_shell == "/usr/sbin/nologin"
        assert grp.getgrgid(user.pw_gid).gr_name == user.pw_name  # a group of its own
        st = env_dir.stat()
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (uid, user.pw_gid, 0o700)
        processes = _processes(env_dir)
        assert any("redis-server" in cmd for cmd in processes.values())
        assert any("app/backend.py" in cmd for cmd in processes.values())  # the service
        assert any("supervisord" in cmd for cmd in processes.values())
        assert {_uid(pid) for pid in processes} == {uid}, processes
    assert uid_a != uid_b

    destroyed = project.run("destroy", "dev-two", "--force")
    assert destroyed.returncode == 0, destroyed.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(names["dev-two"])
    with pytest.raises(KeyError):
        grp.getgrnam(names["dev-two"])
    assert pwd.getpwuid(uid_a).pw_name == names["development"]  # A's is untouched
    assert project.run("destroy", "development", "--force").returncode == 0
    with pytest.raises(KeyError):
        pwd.getpwnam(names["development"])


def _own_name(env: str, env_dir: Path) -> str:
    """The user envplane made for this environment: `envplane-<env>`, or, while another
    home's environment of the same name holds that (tests on other workers do), the name
    hashed from its directory (test_the_same_environment_name_under_two_homes_gets_two_users)."""
    user = run_user(env, env_dir)
    assert user.exists and user.name.startswith("envplane-"), user
    return user.name


@ROOT_ONLY
def test_a_user_left_behind_fails_the_destroy(project: Project) -> None:
    """userdel failing (here a stand-in on PATH that refuses, as userdel does while the user
    is in use) leaves the user: the verified destroy fails listing it; resume removes it."""
    assert project.run("create", "development").returncode == 0
    env_dir = project.home / "environments" / "development"
    name = pwd.getpwuid(env_dir.stat().st_uid).pw_name
    assert name == _own_name("development", env_dir)
    fake = open_tmpdir("envplane-fake-userdel-")
    try:
        (fake / "userdel").write_text(
            '#!/bin/sh\necho "userdel: user is currently used by process 1" >&2\nexit 8\n'
        )
        (fake / "userdel").chmod(0o755)
        path = f"{fake}:{os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin')}"
        failed = project.run("destroy", "development", "--force", PATH=path)
    finally:
        subprocess.run(["rm", "-rf", "--", str(fake)], check=True)
    assert failed.returncode == 1, failed.stderr
    assert f"system user {name}" in failed.stderr and "still exists" in failed.stderr
    assert f"group {name}" in failed.stderr
    assert pwd.getpwnam(name)
    info = project.json("info", "development")
    assert isinstance(info, dict) and info["status"] == "failed"
    ops = project.json("history", "development")
    assert isinstance(ops, list) and ops[0]["kind"] == "destroy"
    resumed = project.run("resume", ops[0]["id"])
    assert resumed.returncode == 0, resumed.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    with pytest.raises(KeyError):
        grp.getgrnam(name)


def _tiny(project: Project) -> Project:
    """The project's home, with a matrix of the tiny environments (and no config templates)."""
    tiny = Project(root=project.root.parent / "tiny", home=project.home)
    tiny.matrix.parent.mkdir(parents=True)
    tiny.matrix.write_text(TINY_MATRIX)
    return tiny


def _supervisord_uid(project: Project, env: str) -> int:
    env_dir = project.home / "environments" / env
    return _uid(int((env_dir / "run" / "supervisord.pid").read_text()))


@ROOT_ONLY
def test_the_same_environment_name_under_two_homes_gets_two_users(project: Project) -> None:
    first = _tiny(project)
    base = open_tmpdir("envplane-second-home-")
    second = _tiny(Project(root=base / "sunday", home=base / "home"))
    try:
        for proj in (first, second):
            made = proj.run("create", "tiny-one")
            assert made.returncode == 0, made.stderr
        one, two = (_supervisord_uid(p, "tiny-one") for p in (first, second))
        assert one != two
        assert pwd.getpwuid(one).pw_name == "envplane-tiny-one"
        other = pwd.getpwuid(two)
        assert other.pw_name.startswith("envplane-tiny-one-") and len(other.pw_name) <= 32
        where = second.home / "environments" / "tiny-one"
        assert other.pw_gecos == f"envplane environment tiny-one {where}"
        assert first.run("destroy", "tiny-one", "--force").returncode == 0
        assert pwd.getpwuid(two).pw_name == other.pw_name  # the other home's is untouched
        assert second.run("update", "tiny-one").returncode == 0
        assert _supervisord_uid(second, "tiny-one") == two
        assert second.run("destroy", "tiny-one", "--force").returncode == 0
        with pytest.raises(KeyError):
            pwd.getpwnam(other.pw_name)
    finally:
        teardown_project(second)
        subprocess.run(["rm", "-rf", "--", str(base)], check=True)


@ROOT_ONLY
def test_a_pinned_run_user_is_shared_and_kept(project: Project) -> None:
    """ENVPLANE_RUN_USER pins one user for every environment (no users are made); an
    environment made so keeps running as it when the pin is gone."""
    tiny = _tiny(project)
    nobody = pwd.getpwnam("nobody").pw_uid
    for env in ("tiny-one", "tiny-two"):
        made = tiny.run("create", env, ENVPLANE_RUN_USER="nobody")
        assert made.returncode == 0, made.stderr
        assert _supervisord_uid(tiny, env) == nobody
        assert (tiny.home / "environments" / env).stat().st_mode & 0o777 == 0o700
    for name in ("envplane-tiny-one", "envplane-tiny-two"):
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
    tiny.edit_matrix("versioning: enabled", "versioning: disabled")
    updated = tiny.run("update", "tiny-one")
    assert updated.returncode == 0, updated.stderr
    assert "1 to update" in updated.stdout  # storage/storage, owned by the run user
    assert _supervisord_uid(tiny, "tiny-one") == nobody
    with pytest.raises(KeyError):
        pwd.getpwnam("envplane-tiny-one")
    for env in ("tiny-one", "tiny-two"):
        assert tiny.run("destroy", env, "--force").returncode == 0
    assert pwd.getpwnam("nobody").pw_uid == nobody


@ROOT_ONLY
def test_a_user_not_made_by_envplane_is_refused() -> None:
    from envplane.errors import BadInput
    from envplane.targets.local.runas import environment_user_name, run_user

    env = "isolation-foreign"
    name = environment_user_name(env)
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
    )
    try:
        with pytest.raises(BadInput) as err:
            run_user(env, Path("/tmp/envplane-nowhere/environments") / env, create=True)
        assert name in err.value.message and "not made by envplane" in err.value.message
    finally:
        subprocess.run(["userdel", name], check=False)


def test_user_names_fit_and_are_stable() -> None:
    from envplane.targets.local.runas import environment_user_name

    assert environment_user_name("development") == "envplane-development"
    long = "a" * 30
    other = "a" * 29 + "b"
    assert len(environment_user_name(long)) <= 32
    assert environment_user_name(long) == environment_user_name(long)
    assert environment_user_name(long) != environment_user_name(other)


def test_an_ordinary_user_runs_every_environment_as_itself() -> None:
    """Not root: nothing switches, every environment runs as the user running envplane."""
    probe = (
        "import os, pwd; from pathlib import Path; "
        "from envplane.targets.local.runas import run_user; "
        "u = run_user('development', Path('/tmp/x/environments/development'), create=True); "
        "v = run_user('dev-two', Path('/tmp/x/environments/dev-two'), create=True); "
        "assert (u, v) == (v, u) and not u.switch, (u, v); "
        "assert u.uid == os.getuid() and u.name == pwd.getpwuid(os.getuid()).pw_name; "
        "print(u.name)"
    )
    as_user: dict[str, object] = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        **as_user,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
    )


def test_a_symlink_planted_as_the_lock_file_is_refused_not_followed(tmp_path: Path) -> None:
    """run/ is writable by the environment's user; envplane (maybe root) must not follow a
    symlink there to create or truncate a file elsewhere."""
    from envplane.errors import OperationFailed
    from envplane.targets.local.envctx import LocalEnv
    from tests.localkit import local_env

    victim = tmp_path / "victim"
    with local_env("lock-test") as env:
        local = LocalEnv.of(env.ctx)
        local.layout.run.mkdir(parents=True)
        local.layout.lockfile.symlink_to(victim)
        with pytest.raises(OperationFailed, match="lock file"), local.lock():
            pass
    assert not victim.exists()
