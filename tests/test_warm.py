"""The warm server (`envplane warm start|stop|status`, docs/warm.md): a command through it is
the cold command byte for byte (output, exit code, stdin, cwd, signals), it serves several
projects, it refuses what it must, and it goes away when told, when idle or when stale.

Each test has a runtime directory of its own under /tmp (socket paths are short), so no
server is shared with another test or with a developer's; a finalizer stops it, kills what is
left and checks that no process of it remains.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from envplane.cli import warmclient
from envplane.state.store import StateStore
from tests.conftest import ENVPLANE, Project, open_tmpdir

SHOP = """\
project: shop
services:
  api:
    command: ["python3", "app.py"]
    env:
      API_KEY: {secret: api-key}
environments:
  dev-one:
    regions:
      primary: us-east-1
"""


def _server_pids(runtime: Path) -> list[int]:
    """The warm server of this runtime directory and the commands it forked (they share its
    command line and its start-up environment), zombies excluded."""
    found = []
    marker = f"XDG_RUNTIME_DIR={runtime}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if b"serve_main" not in (proc / "cmdline").read_bytes():
                continue
            if marker not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(proc.name))
    return found


def _until(what: str, check: object, deadline: float = 60.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {deadline:.0f} s: {what}")


@dataclass
class Warm:
    project: Project
    runtime: Path

    def run(self, *args: str, warm: bool = True, **extra: str) -> subprocess.CompletedProcess[str]:
        return self.project.run(
            *args, ENVPLANE_WARM="1" if warm else "0", XDG_RUNTIME_DIR=str(self.runtime), **extra
        )

    def start(self, *args: str) -> int:
        started = self.run("warm", "start", *args, warm=False)
        assert started.returncode == 0, started.stderr
        return int(started.stdout.split("(pid ", 1)[1].split(")", 1)[0])

    def status(self) -> dict[str, object] | None:
        """The server's status, asked by a cold command (not counted as one it served)."""
        result = self.run("warm", "status", "-o", "json", warm=False)
        assert result.returncode in (0, 1), result.stderr
        doc = json.loads(result.stdout)
        assert doc["running"] is (result.returncode == 0)
        return doc if result.returncode == 0 else None

    def served(self) -> int:
        doc = self.status()
        assert doc is not None, "no warm server runs"
        return int(doc["served"])  # type: ignore[call-overload]

    def same_as_cold(
        self, *args: str, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        cold = self.run(*args, warm=False, input=input)
        warm = self.run(*args, input=input)
        assert (warm.returncode, warm.stdout, warm.stderr) == (
            cold.returncode,
            cold.stdout,
            cold.stderr,
        ), args
        return warm


@pytest.fixture
def warm(project: Project) -> Iterator[Warm]:
    runtime = Path(tempfile.mkdtemp(prefix="ew-", dir="/tmp"))
    w = Warm(project, runtime)
    try:
        yield w
    finally:
        w.run("warm", "stop", warm=False)
        try:
            _until("the warm server gone after `warm stop`", lambda: not _server_pids(runtime), 30)
        finally:
            for pid in _server_pids(runtime):
                os.kill(pid, signal.SIGKILL)
            _until("every process of the warm server killed", lambda: not _server_pids(runtime))
            shutil.rmtree(runtime, ignore_errors=True)


def _shop(base: Path) -> Project:
    root = base / "shop"
    (root / "config").mkdir(parents=True)
    (root / "config" / "environment-matrix.yaml").write_text(SHOP, encoding="utf-8")
    return Project(root=root, home=base / "home")


def _stored(project: Project, name: str = "api-key") -> str:
    with StateStore.open(f"sqlite:///{project.home / 'state.db'}", project.home) as store:
        return store.get_secret("dev-one", name)


def test_commands_through_the_server_are_the_cold_ones(warm: Warm) -> None:
    warm.start()
    before = warm.served()
    warm.same_as_cold("--version")
    listed = warm.same_as_cold("list", "-o", "json")
    assert {e["name"] for e in json.loads(listed.stdout)} == {
        "production",
        "staging",
        "development",
    }
    refused = warm.same_as_cold("validate", "development")
    assert refused.returncode == 2 and "not created" in refused.stderr
    bad = warm.same_as_cold("info", "nosuch")
    assert bad.returncode == 2 and "no environment 'nosuch'" in bad.stderr
    usage = warm.same_as_cold("list", "--no-such-option")
    assert usage.returncode == 2 and "No such option" in usage.stderr
    as_json = warm.same_as_cold("info", "nosuch", "-o", "json")
    assert json.loads(as_json.stderr)["exit_code"] == 2
    assert warm.served() == before + 6  # each one went through the server, not cold


def test_the_callers_cwd_stdin_and_a_second_project(warm: Warm) -> None:
    base = open_tmpdir("envplane-warm-shop-")
    try:
        shop = _shop(base)
        warm.start()
        before = warm.served()
        # a relative -f, resolved against the caller's directory, not the server's (/)
        argv = [ENVPLANE, "-f", "config/environment-matrix.yaml", "list", "-o", "json"]
        env = warm.project.env(XDG_RUNTIME_DIR=str(warm.runtime))
        results = {}
        for flag in ("0", "1"):
            results[flag] = subprocess.run(
                argv,
                cwd=warm.project.root,
                env={**env, "ENVPLANE_WARM": flag},
                capture_output=True,
                text=True,
                timeout=120,
            )
        cold, hot = results["0"], results["1"]
        assert hot.returncode == cold.returncode == 0, hot.stderr
        assert (hot.stdout, hot.stderr) == (cold.stdout, cold.stderr)

        # stdin: the secret's value piped to a command run by the server
        other = Warm(shop, warm.runtime)
        said = other.run("secret", "set", "dev-one", "api-key", input="piped-value-1\n")
        assert said.returncode == 0, said.stderr
        assert said.stdout == "secret api-key of dev-one set; `envplane create dev-one` uses it\n"
        assert _stored(shop) == "piped-value-1"
        said = other.run("secret", "set", "dev-one", "api-key", input="piped-value-2")
        assert said.stdout.startswith("secret api-key of dev-one replaced")
        assert _stored(shop) == "piped-value-2"

        # the two projects (two ENVPLANE_HOMEs) through one server, each seeing its own
        shop_list = other.same_as_cold("secret", "list", "dev-one", "-o", "json")
        assert [s["name"] for s in json.loads(shop_list.stdout) if s["stored"]] == ["api-key"]
        sunday = warm.same_as_cold("secret", "list", "development", "-o", "json")
        assert json.loads(sunday.stdout) == []
        assert warm.served() == before + 1 + 2 + 1 + 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_hidden_prompt_on_a_terminal_through_the_server(warm: Warm) -> None:
    """getpass cannot open /dev/tty in the server's child (no controlling terminal): it turns
    echo off on the caller's terminal, its stdin, itself. The typed value is not echoed."""
    base = open_tmpdir("envplane-warm-tty-")
    try:
        shop = _shop(base)
        warm.start()
        before = warm.served()
        primary, secondary = os.openpty()
        env = shop.env(ENVPLANE_WARM="1", XDG_RUNTIME_DIR=str(warm.runtime))
        argv = [ENVPLANE, "-f", str(shop.matrix), "secret", "set", "dev-one", "api-key"]
        with subprocess.Popen(
            argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env
        ) as proc:
            os.close(secondary)
            seen = b""
            for _ in range(2):  # the value, then its confirmation
                seen += _read_until(primary, b": ")
                os.write(primary, b"typed-s3cret\n")
            seen += _read_until(primary, b"uses it")
            assert proc.wait(timeout=60) == 0, seen
        os.close(primary)
        assert b"typed-s3cret" not in seen, seen
        assert b"Value of secret api-key" in seen
        assert _stored(shop) == "typed-s3cret"
        assert warm.served() == before + 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _read_until(fd: int, marker: bytes, deadline: float = 60.0) -> bytes:
    got = b""
    end = time.monotonic() + deadline
    while marker not in got:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        assert ready, f"no {marker!r} within {deadline:.0f} s: {got!r}"
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the other end closed
            break
        if not chunk:
            break
        got += chunk
    return got


def _interrupted(warm: Warm, flag: str, *, ignoring: bool = False) -> tuple[int, str]:
    """`gc --every 5m`, sent SIGINT (as ^C) once its first pass is printed: its exit code and
    what it said on stderr. It is started with SIGINT at the system's default, as from a
    terminal, whatever this test process was started with (a shell's `&` ignores it); with
    `ignoring`, ignored, as after `&` or `nohup` - it then goes on, and SIGTERM ends it."""
    argv = [ENVPLANE, "-f", str(warm.project.matrix), "gc", "--every", "5m"]
    env = warm.project.env(ENVPLANE_WARM=flag, XDG_RUNTIME_DIR=str(warm.runtime))
    disposition = signal.SIG_IGN if ignoring else signal.SIG_DFL
    with subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
    ) as proc:
        assert proc.stdout is not None
        first = _read_until(proc.stdout.fileno(), b"\n")
        assert b"nothing to reap" in first, first
        proc.send_signal(signal.SIGINT)
        if ignoring:
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=2)  # still looping: the interrupt was ignored
            proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode()


def test_an_interrupt_ends_the_command_as_it_ends_a_cold_one(warm: Warm) -> None:
    warm.start()
    cold = _interrupted(warm, "0")
    before = warm.served()
    hot = _interrupted(warm, "1")
    assert hot == cold
    assert cold == (1, "interrupted\n")
    assert warm.served() == before + 1

    def done() -> bool:
        doc = warm.status()
        return doc is not None and doc["running_commands"] == 0

    _until("the interrupted command's process gone", done)


def test_a_signal_the_caller_ignores_the_command_ignores_too(warm: Warm) -> None:
    warm.start()
    cold = _interrupted(warm, "0", ignoring=True)
    before = warm.served()
    hot = _interrupted(warm, "1", ignoring=True)
    assert hot == cold == (0, "")  # SIGINT ignored, SIGTERM ended the loop as it does
    assert warm.served() == before + 1


def test_a_stale_server_answers_so_and_exits(warm: Warm) -> None:
    pid = warm.start()
    doc = warm.status()
    assert doc is not None and doc["pid"] == pid
    path = Path(str(doc["socket"]))
    code = warmclient.run_warm([ENVPLANE, "--version"], path=path, fingerprint_of="0" * 64)
    assert code is None  # the caller runs it cold
    _until("the stale server gone", lambda: not _server_pids(warm.runtime))
    assert not path.exists()
    version = warm.run("--version")  # no server now: cold, silently
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout.startswith("envplane, version ")


def test_a_socket_directory_others_can_write_is_not_used(warm: Warm) -> None:
    warm.start()
    before = warm.served()
    directory = warm.runtime / "envplane"
    directory.chmod(0o755)
    try:
        version = warm.run("--version")
        assert (version.returncode, version.stderr) == (0, "")
    finally:
        directory.chmod(0o700)
    assert warm.served() == before  # it ran cold

    warm.run("warm", "stop", warm=False)
    _until("the server stopped", lambda: not _server_pids(warm.runtime))
    directory.chmod(0o755)
    refused = warm.run("warm", "start", warm=False)
    assert refused.returncode == 2
    assert str(directory) in refused.stderr and "0755, not 0700" in refused.stderr
    assert not _server_pids(warm.runtime)


def test_an_idle_server_exits_by_itself(warm: Warm) -> None:
    pid = warm.start("--idle", "2s")
    doc = warm.status()
    assert doc is not None and doc["pid"] == pid and doc["idle_timeout"] == 2
    _until("the idle server gone", lambda: warm.status() is None)
    _until("its process gone", lambda: pid not in _server_pids(warm.runtime))
    assert not Path(str(doc["socket"])).exists()


def test_start_twice_and_status_when_none_runs(warm: Warm) -> None:
    none = warm.run("warm", "status", warm=False)
    assert none.returncode == 1 and "no warm server running" in none.stdout
    pid = warm.start()
    again = warm.run("warm", "start", warm=False)
    assert again.returncode == 3 and f"already runs (pid {pid}" in again.stderr
    running = warm.run("warm", "status")
    assert running.returncode == 0 and f"pid {pid}" in running.stdout
    stopped = warm.run("warm", "stop")  # through the server itself: it answers, then goes
    assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
    _until("the server stopped", lambda: not _server_pids(warm.runtime))
    assert warm.run("warm", "status").returncode == 1


@pytest.mark.parametrize("idle", ["0s", "soon", "30", "-5m", "400d"])
def test_a_bad_idle_timeout_starts_nothing(warm: Warm, idle: str) -> None:
    refused = warm.run("warm", "start", "--idle", idle, warm=False)
    assert refused.returncode == 2, refused.stderr
    assert f"invalid --idle {idle!r}" in refused.stderr and "--idle 30m" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not _server_pids(warm.runtime)
    assert warm.run("warm", "status", warm=False).returncode == 1


def test_a_killed_command_exits_128_plus_its_signal(warm: Warm) -> None:
    server = warm.start()
    argv = [ENVPLANE, "-f", str(warm.project.matrix), "gc", "--every", "5m"]
    env = warm.project.env(ENVPLANE_WARM="1", XDG_RUNTIME_DIR=str(warm.runtime))
    with subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert b"nothing to reap" in _read_until(proc.stdout.fileno(), b"\n")
        (child,) = [pid for pid in _server_pids(warm.runtime) if pid != server]
        os.kill(child, signal.SIGKILL)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGKILL  # what a shell reports for a cold one
    assert err == b""


def test_a_socket_path_too_long_runs_cold(warm: Warm) -> None:
    deep = warm.runtime / ("d" * 100)
    deep.mkdir(mode=0o700)
    long = Warm(warm.project, deep)
    refused = long.run("warm", "start", warm=False)
    assert refused.returncode == 2
    assert "longer than a Unix socket allows" in refused.stderr and str(deep) in refused.stderr
    version = long.run("--version")
    assert (version.returncode, version.stderr) == (0, "")
    assert not _server_pids(deep)
