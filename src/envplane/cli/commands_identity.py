"""Identities of the REST API: `token create/list/revoke`, `user add/list/remove`, and
`audit`. A token is printed once, when created; a password is read from a hidden prompt or
stdin, never from the command line (argv is visible to every user of the machine)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from envplane.cli.common import output_option
from envplane.errors import BadInput
from envplane.workspace import Workspace

ROLE_CHOICE = click.Choice(["viewer", "deployer", "approver", "admin"])
ROLE_HELP = (
    "What it may do: viewer reads (no secrets), deployer changes environments in its scope, "
    "approver approves or rejects promotions, admin does everything."
)
ENVS_HELP = (
    "Environment scope: names or globs, comma-separated ('pr-*,development'). Default: every "
    "environment; a production-like one (approval_required) only when named exactly."
)
PERSON_HELP = (
    "Who this identity is for the four-eyes rule: the OS account of the same person, so they "
    "cannot approve through the API what they requested with the CLI (default: api:NAME)."
)


def _grant_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--role, --envs and --person: what a token and a user are granted, said the same way."""
    command = click.option("--person", default=None, help=PERSON_HELP)(command)
    command = click.option("--envs", default=None, help=ENVS_HELP)(command)
    return click.option("--role", type=ROLE_CHOICE, required=True, help=ROLE_HELP)(command)


def _revoke(ws: Workspace, kind: str, name: str) -> None:
    from envplane.cli import output
    from envplane.service.identities import revoke

    revoke(ws.store, kind, name)
    output.console().print(f"{kind} {name} revoked", markup=False)


def _when(value: object) -> str:
    from datetime import datetime

    from envplane.service.results import iso

    return iso(value, "seconds") if isinstance(value, datetime) else "-"


def _identity_table(kind: str, ws: Workspace, output_format: str) -> None:
    from envplane.cli import output
    from envplane.service.identities import identities

    views = identities(ws.store, kind)
    if output_format == "json":
        output.emit_model(views)
        return
    rows = [
        [
            v.name,
            v.role,
            ",".join(v.envs) or "*",
            v.person,
            v.created_by,
            _when(v.expires_at),
            _when(v.last_used_at),
            "revoked" if v.revoked_at else "active",
        ]
        for v in views
    ]
    heads = ["NAME", "ROLE", "SCOPE", "PERSON", "CREATED BY", "EXPIRES", "LAST USED", "STATE"]
    output.table(heads, rows)


@click.group(name="token")
def token() -> None:
    """API tokens: a role, an environment scope, an expiry; only a hash is stored."""


@token.command(name="create")
@click.option("--name", required=True, help="The token's name (a-z, 0-9, '_', '-').")
@_grant_options
@click.option("--expires", default=None, help="Lifetime: 30d, 12h, 90m (default: no expiry).")
@output_option
@click.pass_obj
def token_create(
    ws: Workspace,
    name: str,
    role: str,
    envs: str | None,
    expires: str | None,
    person: str | None,
    output_format: str,
) -> None:
    """Create a token and print it, once: it cannot be shown again."""
    from envplane.cli import output
    from envplane.service.identities import IdentityView, create_token

    record, secret = create_token(ws.store, name, role, envs=envs, expires=expires, person=person)
    if output_format == "json":
        output.emit_json({**IdentityView.of(record).model_dump(mode="json"), "token": secret})
        return
    click.echo(secret)
    scope = ",".join(record.envs) or "*"
    until = _when(record.expires_at) if record.expires_at else "never"
    output.console(stderr=True).print(
        f"token {name}: {role}, scope {scope}, expires {until}. Keep it now: only its hash is "
        "stored.",
        markup=False,
    )


@token.command(name="list")
@output_option
@click.pass_obj
def token_list(ws: Workspace, output_format: str) -> None:
    """Tokens with their role, scope, creator, expiry and last use (never the token)."""
    _identity_table("token", ws, output_format)


@token.command(name="revoke")
@click.argument("name")
@click.pass_obj
def token_revoke(ws: Workspace, name: str) -> None:
    """Revoke token NAME: from now on it is refused (401)."""
    _revoke(ws, "token", name)


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        typed: str = click.prompt(
            f"Password for {name}", hide_input=True, confirmation_prompt=True, err=True
        )
        return typed
    line = sys.stdin.readline(1025)
    if not line:
        raise BadInput("no password on stdin", hint="pipe it: printf '%s\\n' \"$PW\" | ...")
    return line.rstrip("\r\n")


@click.group(name="user")
def user() -> None:
    """Dashboard users: a name and a password (argon2id), a role, an environment scope."""


@user.command(name="add")
@click.argument("name")
@_grant_options
@click.argument("extra", nargs=-1, metavar="")
@click.pass_obj
def user_add(
    ws: Workspace,
    name: str,
    role: str,
    envs: str | None,
    person: str | None,
    extra: tuple[str, ...],
) -> None:
    """Add user NAME; the password is typed at a hidden prompt, or read from stdin."""
    from envplane.cli import output
    from envplane.service.identities import add_user

    if extra:  # never echo what may be a password given as an argument
        raise BadInput(
            "a password is never an argument (the command line is visible to every user of "
            "the machine); nothing was added",
            hint=f"type it at the prompt, or pipe it: envplane user add {name} --role {role}",
        )
    add_user(ws.store, name, role, _read_password(name), envs=envs, person=person)
    output.console().print(f"user {name} added ({role})", markup=False)


@user.command(name="list")
@output_option
@click.pass_obj
def user_list(ws: Workspace, output_format: str) -> None:
    """Users with their role, scope and last sign-in (never a hash)."""
    _identity_table("user", ws, output_format)


@user.command(name="remove")
@click.argument("name")
@click.pass_obj
def user_remove(ws: Workspace, name: str) -> None:
    """Revoke user NAME: their sign-ins are refused from now on."""
    _revoke(ws, "user", name)


@click.command(name="audit")
@click.option("--env", default=None, help="Only this environment's entries.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000))
@output_option
@click.pass_obj
def audit(ws: Workspace, env: str | None, limit: int, output_format: str) -> None:
    """The audit trail, newest first: who did what to which environment, from where, how it
    ended (changes and refusals of the CLI and of the API alike)."""
    from envplane.cli import output
    from envplane.names import check_env_name
    from envplane.service.identities import audit_views

    if env is not None:
        check_env_name(env)
    views = audit_views(ws.store, env, limit=limit)
    if output_format == "json":
        output.emit_model(views)
        return
    rows = [
        [
            _when(v.at),
            v.actor,
            v.environment or "-",
            v.action,
            v.outcome or "-",
            v.source or "cli",
            v.detail,
        ]
        for v in views
    ]
    output.table(["AT", "WHO", "ENV", "ACTION", "OUTCOME", "FROM", "DETAIL"], rows)


COMMANDS = [token, user, audit]
