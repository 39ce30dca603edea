"""`envplane serve`: the REST API (and what is mounted into it) on uvicorn.

The CLI may not import the API (they are sibling front doors: `.importlinter`), so `serve`
checks its arguments here and then replaces this process with `python -m envplane.api`,
which builds the app and runs the server: same pid, same terminal, same signals.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import click

from envplane.errors import BadInput
from envplane.workspace import Workspace

LOOPBACK = "127.0.0.1"


def _exposed(host: str) -> bool:
    """Anything but a loopback address (or localhost) is reachable from elsewhere."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name: it may resolve to anything


@click.command()
@click.option("--host", default=LOOPBACK, show_default=True, help="Address to bind.")
@click.option("--port", default=8700, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TLS certificate (PEM); with --ssl-keyfile the server speaks HTTPS only.",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="TLS private key (PEM).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=click.IntRange(1, 16),
    help="Threads that run long operations (create, deploy, backup...) at once.",
)
@click.pass_obj
def serve(
    ws: Workspace,
    host: str,
    port: int,
    ssl_certfile: Path | None,
    ssl_keyfile: Path | None,
    workers: int,
) -> None:
    """Serve the REST API on HOST:PORT (OpenAPI at /openapi.json, docs at /docs, /healthz,
    /metrics). Every request needs a token (`envplane token create`) or a session."""
    from envplane.cli import output

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise BadInput("--ssl-certfile and --ssl-keyfile go together", hint="give both, or neither")
    tls = ssl_certfile is not None
    if _exposed(host) and not tls:
        output.console(stderr=True).print(
            f"warning: serving on {host} without TLS: tokens, passwords and session cookies "
            "would cross the network in clear. Give --ssl-certfile/--ssl-keyfile, or bind "
            f"{LOOPBACK} behind a TLS proxy.",
            style="bold yellow",
            markup=False,
        )
    ws.store  # noqa: B018 - opened (and migrated) here: a bad database URL is a clear error now
    args = [
        sys.executable, "-m", "envplane.api",
        "--matrix", str(ws.settings.matrix_path),
        "--host", host, "--port", str(port), "--workers", str(workers),
    ]  # fmt: skip
    if tls:
        args += ["--ssl-certfile", str(ssl_certfile), "--ssl-keyfile", str(ssl_keyfile)]
    ws.close()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, args)  # noqa: S606 - a fixed argv, no shell


COMMANDS = [serve]
