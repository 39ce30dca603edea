"""`envplane secret set ENV NAME` (the value from stdin) and `envplane secret list ENV`.

A value is never an argument (argv is visible to every user of the machine, and kept in shell
histories), never echoed, never printed."""

from __future__ import annotations

import sys

import click

from envplane.cli.common import env_argument, output_option
from envplane.errors import BadInput
from envplane.workspace import Workspace


@click.group(name="secret")
def secret() -> None:
    """An environment's secrets: what its services read as `KEY: {secret: NAME}` (generated
    once unless set here; kept encrypted in the state store). Values are never shown."""


def _read_value(name: str) -> str:
    """The value: typed at a hidden prompt (twice) on a terminal, else all of stdin with one
    trailing newline dropped (`printf %s "$KEY" |` and `echo "$KEY" |` give the same)."""
    from envplane.service.secrets import MAX_VALUE_BYTES

    if sys.stdin.isatty():
        typed: str = click.prompt(
            f"Value of secret {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        return typed
    data = sys.stdin.buffer.read(MAX_VALUE_BYTES + 3)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("the value read from stdin is not UTF-8 text") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


@secret.command(name="set")
@env_argument
@click.argument("name", metavar="NAME")
@click.argument("extra", nargs=-1, metavar="")
@click.pass_obj
def set_(ws: Workspace, env: str, name: str, extra: tuple[str, ...]) -> None:
    """Set ENV's secret NAME to the value read from stdin (never from the command line).

    Before ENV is created, its create uses the value instead of generating one; after, `envplane
    update ENV` restarts the services that read it. Example:
    `printf %s "$STRIPE_KEY" | envplane secret set dev api-key`."""
    from envplane.service.secrets import check_value, set_secret

    if extra:  # not click's "unexpected extra argument (...)": that would echo a value
        raise BadInput(
            "a secret's value is never an argument (the command line is visible to every user "
            "of the machine, and kept in shell histories); nothing was set",
            hint=f"pipe it on stdin, or type it at the prompt: envplane secret set {env} {name}",
        )
    value = check_value(_read_value(name))
    result = set_secret(ws, env, name, value)
    click.echo(result.text())


@secret.command(name="list")
@env_argument
@output_option
@click.pass_obj
def list_(ws: Workspace, env: str, output_format: str) -> None:
    """ENV's secrets: stored or still to be generated, and which service env values read
    them. Names only, never values."""
    from envplane.cli import output
    from envplane.service.secrets import list_secrets

    secrets = list_secrets(ws, env)
    if output_format == "json":
        output.emit_model(secrets)
        return
    if not secrets:
        output.console().print(f"{env} has no secrets.", markup=False)
        return
    rows = [
        [
            s.name,
            "stored" if s.stored else "generated at the next create/update",
            ", ".join(s.used_by) or "-",
            "envplane" if s.managed else "-",
        ]
        for s in secrets
    ]
    output.table(["NAME", "VALUE", "READ BY", "MANAGED BY"], rows)


COMMANDS = [secret]
