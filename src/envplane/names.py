"""Names that reach paths, shells, SQL or process tables are checked here first."""

from __future__ import annotations

import re

from envplane.errors import InvalidName

ENV_NAME_RE = re.compile(r"^[a-z0-9-]{3,30}$")
# Service, template and resource names: lower-case words, no path separators.
IDENT_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
# A name is passed as an argument to the programs envplane runs (initdb, supervisorctl, nginx,
# terraform, helm, ...): one that begins with '-' reads as an option there, and one that ends
# with it makes '--' when joined to another ("<name>-0", "<project>-<name>").
_DASH_RULE = "may not begin or end with '-' (it would read as an option to the tools envplane runs)"


def _dashes(name: str, what: str) -> None:
    if name.startswith("-") or name.endswith("-"):
        raise InvalidName(f"invalid {what} {name!r}: a name {_DASH_RULE}")


def check_env_name(name: str, *, what: str = "environment name") -> str:
    if not isinstance(name, str) or not ENV_NAME_RE.fullmatch(name):
        raise InvalidName(
            f"invalid {what} {name!r}: use 3 to 30 characters from a-z, 0-9 and '-'",
        )
    _dashes(name, what)
    return name


def check_ident(name: str, *, what: str) -> str:
    if not isinstance(name, str) or not IDENT_RE.fullmatch(name):
        raise InvalidName(
            f"invalid {what} {name!r}: start with a letter; use a-z, 0-9, '_' and '-'",
        )
    _dashes(name, what)
    return name


def sql_ident(name: str) -> str:
    """A PostgreSQL identifier made from an already-checked name ('-' is not allowed there)."""
    ident = name.replace("-", "_")
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", ident):
        raise InvalidName(f"{name!r} cannot be used as a database identifier")
    return ident
