"""`envplane`: global options, the command list, and the one place errors become exit codes."""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, NoReturn

import click

from envplane import __version__
from envplane.errors import EXIT_FAILED, EnvplaneError

ARGV_META = "envplane.argv"
BEFORE_EXIT: list[Callable[[int], None]] = []
"""Called with the exit status once the streams are flushed, just before `os._exit`: a warm
server's child (cli/warmserver.py) tells its caller the code there."""


class EnvplaneGroup(click.Group):
    """Turns every expected error into one red line and its exit code; never a traceback.

    Under `-o json` every error - envplane's, click's usage errors, an interrupt, a bug - is
    instead one JSON object on stderr, {"error", "hint", "exit_code"}, and stdout stays empty.
    The format is the one the command parsed (`common.OUTPUT_META`); when the error came
    before its `-o` was parsed (an unknown option, a bad value), the one the arguments ask for.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta.setdefault(ARGV_META, list(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from envplane.cli import output

        try:
            return super().invoke(ctx)
        except EnvplaneError as exc:
            output.error(exc.message, exc.hint, exc.exit_code, as_json=_json_errors(ctx))
            ctx.exit(exc.exit_code)
        except click.ClickException as exc:
            if not _json_errors(ctx):
                raise  # click's own usage message
            where = getattr(exc, "ctx", None)
            hint = f"see `{where.command_path} --help`" if where is not None else None
            output.error(exc.format_message(), hint, exc.exit_code, as_json=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            if _json_errors(ctx):
                output.error("interrupted", None, EXIT_FAILED, as_json=True)
            else:
                click.echo("interrupted", err=True)
            ctx.exit(EXIT_FAILED)
        except (click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # a bug: as text, `main` reports it
            if not _json_errors(ctx):
                raise
            log = _crash_log()
            message = f"internal error: {type(exc).__name__}: {exc}"
            output.error(message, f"details in {log}", EXIT_FAILED, as_json=True)
            ctx.exit(EXIT_FAILED)


def _json_errors(ctx: click.Context) -> bool:
    from envplane.cli.common import OUTPUT_META

    chosen = ctx.meta.get(OUTPUT_META)
    if chosen is None:
        chosen = _output_in(ctx.meta.get(ARGV_META, []))
    return chosen == "json"


def _output_in(args: list[str]) -> str | None:
    """The `-o/--output` value the raw arguments give (the last one, as click takes it)."""
    found = None
    it = iter(args)
    for arg in it:
        if arg == "--":
            break
        if arg in ("-f", "--matrix"):
            next(it, None)
        elif arg in ("-o", "--output"):
            found = next(it, None)
        elif arg.startswith("--output="):
            found = arg[len("--output=") :]
        elif arg.startswith("-o") and not arg.startswith("--"):
            found = arg[2:]
    return found


def _crash_log() -> str:
    """The current exception's traceback, in a file of its own; returns its path."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="envplane-crash-", suffix=".log", delete=False
    ) as f:
        traceback.print_exc(file=f)
    return f.name


@click.group(cls=EnvplaneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-f",
    "--matrix",
    "matrix",
    envvar="ENVPLANE_MATRIX",
    default="config/environment-matrix.yaml",
    show_default=True,
    metavar="FILE",
    help="The environment matrix (env ENVPLANE_MATRIX). State lives in ENVPLANE_HOME, "
    "default .envplane/ beside the matrix's project.",
)
@click.version_option(__version__, prog_name="envplane")
@click.pass_context
def cli(ctx: click.Context, matrix: str) -> None:
    """Manage deployment environments - development, staging, production, previews - from one
    declarative matrix, on this machine (local target) or in the cloud.

    Exit codes: 0 done, 1 operation failed, 2 bad input, 3 blocked (lock held, approval needed).
    """
    from envplane.cli import output
    from envplane.workspace import Workspace

    ws = Workspace.from_matrix(matrix, events=output.show_event)
    ctx.obj = ws
    ctx.call_on_close(ws.close)


def _register() -> None:
    from envplane.cli import (
        commands_cloud,
        commands_cost,
        commands_data,
        commands_delivery,
        commands_drift,
        commands_identity,
        commands_lifecycle,
        commands_parity,
        commands_policy,
        commands_preview,
        commands_read,
        commands_secrets,
        commands_serve,
        warm,
    )

    modules = (
        commands_lifecycle,
        commands_read,
        commands_data,
        commands_delivery,
        commands_cloud,
        commands_secrets,
        commands_parity,
        commands_drift,
        commands_policy,
        commands_preview,
        commands_cost,
        commands_identity,
        commands_serve,
        warm,
    )
    for module in modules:
        for command in module.COMMANDS:
            cli.add_command(command)


_register()


def main() -> None:
    try:
        cli.main(prog_name="envplane", standalone_mode=True)
    except SystemExit as done:
        _exit_now(done.code)
    except Exception as exc:  # a bug: say so plainly, keep the traceback out of the user's way
        log = _crash_log()
        click.echo(f"internal error: {type(exc).__name__}: {exc} (details in {log})", err=True)
        sys.exit(EXIT_FAILED)


def _exit_now(code: object) -> NoReturn:
    """Exit without the interpreter's teardown, which frees every loaded module's objects one
    by one: 0.1 s after `list`, 0.3-0.4 s after a restore. Nothing of envplane's needs it (the
    store commits before a command returns; files are closed by `with`). What does run first,
    as at a normal exit: threads still working (the spare-cluster refill) are waited for,
    atexit handlers run, the standard streams are flushed."""
    status = code if isinstance(code, int) else (0 if code is None else 1)
    if code is not None and not isinstance(code, int):
        click.echo(str(code), err=True)
    shutdown = getattr(threading, "_shutdown", None)  # what Py_Finalize calls first
    if shutdown is None:
        raise SystemExit(code)  # an interpreter without it: the ordinary, slower way out
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    for hook in BEFORE_EXIT:
        hook(status)
    os._exit(status)


__all__ = ["cli", "main"]
