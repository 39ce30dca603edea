"""`envplane warm start|stop|status` (docs/warm.md); the server is `cli/warmserver.py`, which
only the server's own process imports.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import time
from pathlib import Path

import click

from envplane.cli import warmclient as wire
from envplane.cli.common import output_option
from envplane.errors import BadInput, Blocked, EnvplaneError

START_TIMEOUT = 120.0  # the server's imports, on a loaded machine
# Interpreter env the server is started with: what a Python process reads at start-up, and
# where its socket lives. The rest (secrets, database URLs) is each command's, never its own.
_KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "XDG_RUNTIME_DIR", "TZ")


# --- the commands -----------------------------------------------------------------------


@click.group("warm")
def warm() -> None:
    """A resident process that has imported envplane and runs each command in a fork of
    itself: the same CLI, its imports already done (docs/warm.md). ENVPLANE_WARM=0 bypasses it."""


def _socket_ready(path: Path) -> None:
    """The socket's directory made (0700) or checked; a dead socket left behind removed."""
    if wire.too_long(path):
        raise BadInput(
            f"the warm server's socket path {path} is longer than a Unix socket allows "
            f"({wire.MAX_SUN_PATH} bytes)",
            hint="set XDG_RUNTIME_DIR to a shorter directory of yours",
        )
    directory = path.parent
    if not os.path.lexists(directory):
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
            directory.chmod(0o700)  # whatever the umask
    why = wire.unsafe_dir(directory)
    if why is not None:
        raise BadInput(
            f"{directory} cannot hold the warm server's socket: {why}",
            hint=f"make it this user's alone (chmod 0700 {directory}), or set XDG_RUNTIME_DIR "
            "to a directory that is",
        )
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise BadInput(f"{path} is not a socket", hint="remove it, then start again")
        os.unlink(path)  # nothing answered on it: a server that was killed left it


@warm.command("start")
@click.option(
    "--idle",
    default="30m",
    show_default=True,
    metavar="DURATION",
    help="Exit after DURATION (30s, 30m, 8h) without a command.",
)
def start(idle: str) -> None:
    """Start the warm server in the background; print its socket and pid."""
    import subprocess  # here: the CLI's other commands do not pay for it

    from envplane.previews.spec import parse_ttl

    seconds = parse_ttl(idle, 0, what="--idle")
    path = Path(wire.socket_path())
    running = wire.request({"status": True}, path)
    if running is not None:
        raise Blocked(
            f"a warm server already runs (pid {running.get('pid')}, socket {path})",
            hint="envplane warm stop, then start again",
        )
    _socket_ready(path)
    env = {k: v for k, v in os.environ.items() if k in _KEPT_ENV}
    env.update(wire.interpreter_settings(os.environ))
    code = "from envplane.cli.warmserver import serve_main; serve_main()"
    proc = subprocess.Popen(
        [sys.executable, "-P", "-c", code, str(seconds)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd="/",
        start_new_session=True,  # no terminal: a hangup or ^C in this shell does not reach it
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = wire.request({"status": True}, path)
        if status is not None and status.get("pid") == proc.pid:
            if proc.stderr is not None:
                proc.stderr.close()
            click.echo(f"warm server started (pid {proc.pid}), socket {path}")
            return
        if proc.poll() is not None:
            said = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise EnvplaneError(
                f"the warm server did not start (exit {proc.returncode}): {said or 'no message'}",
                hint="run `envplane warm start` again; ENVPLANE_WARM=0 meanwhile runs cold",
            )
        time.sleep(0.05)
    proc.kill()
    raise EnvplaneError(
        f"the warm server did not listen within {START_TIMEOUT:.0f} s", hint="start it again"
    )


@warm.command("stop")
def stop() -> None:
    """Stop the warm server (commands it is running go on); later commands run cold."""
    answer = wire.request({"stop": True})
    if answer is None:
        click.echo("no warm server was running")
        return
    click.echo(f"warm server stopped (pid {answer.get('pid')})")


@warm.command("status")
@output_option
@click.pass_context
def status(ctx: click.Context, output_format: str) -> None:
    """Whether a warm server runs (exit 0: pid, start, commands served, idle timeout) or not
    (exit 1)."""
    from envplane.cli import output

    path = Path(wire.socket_path())
    answer = wire.request({"status": True}, path)
    if output_format == "json":
        output.emit_json(answer or {"running": False, "socket": str(path)})
    elif answer is None:
        click.echo(f"no warm server running (socket {path})")
    else:
        click.echo(
            f"warm server running: pid {answer['pid']}, since {answer['started']}, "
            f"{answer['served']} command(s) served, {answer['running_commands']} running, "
            f"idle timeout {answer['idle_timeout']:.0f} s, socket {answer['socket']}"
        )
    if answer is None:
        ctx.exit(1)


COMMANDS = [warm]
