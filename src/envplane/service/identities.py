"""Who may use the REST API, and as whom: tokens and users, their roles and environment
scopes, sign-in, and the decision whether an identity may do something to an environment.

Tokens are 32 random bytes (`secrets.token_urlsafe`), shown once; the store keeps their
sha256. A fast hash is right for them: with 256 bits of randomness there is nothing to guess,
and a lookup by hash costs one indexed SELECT per request. Passwords are chosen by people, so
they are hashed with argon2id (argon2-cffi's defaults: RFC 9106's second recommendation).

Four-eyes across front doors: an identity acts as a *person*. The CLI's person is the OS
account (`state.procs.os_user`); an API identity's person is `--person` when given (the OS
account of the same human, so a promotion asked for with the CLI cannot be approved by that
human's token), else `api:NAME` (a namespace no OS account name can be, so a token called
`root` is never taken for the root account). Decisions and requests record the person.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from envplane.errors import BadInput, Blocked
from envplane.matrix.models_previews import lifetime_seconds
from envplane.names import check_ident
from envplane.service.results import Timestamp, View
from envplane.state.base import now
from envplane.state.identities import ROLES, AuditEntry, IdentityRecord

if TYPE_CHECKING:
    from envplane.state.store import StateStore
    from envplane.workspace import Workspace

__all__ = [
    "ROLES",
    "Action",
    "Forbidden",
    "Identity",
    "NotSignedIn",
    "add_user",
    "audit_views",
    "authorize",
    "create_token",
    "identities",
    "production_like",
    "revoke",
    "sign_in_token",
    "sign_in_user",
]

Action = Literal["read", "change", "approve", "admin", "secrets"]
"""read: anything that changes nothing (never secrets); change: create, update, destroy,
deploy, backups, previews, promotion requests (within the scope); approve: approve or reject
a promotion; admin: identities and the audit trail; secrets: passwords in URLs."""

TOKEN_PREFIX = "ept_"  # noqa: S105 - a marker of the format, not a secret
_MAY: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "deployer": frozenset({"read", "change"}),
    "approver": frozenset({"read", "approve"}),
    "admin": frozenset({"read", "change", "approve", "admin", "secrets"}),
}
_PERSON_RE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")
_SCOPE_RE = re.compile(r"[a-z0-9*?\[\]-]{1,40}")


class NotSignedIn(BadInput):
    """No valid identity: an unknown, expired or revoked token, a wrong password (401)."""


class Forbidden(Blocked):
    """A known identity whose role or scope does not allow this (403)."""


@dataclass(frozen=True)
class Identity:
    kind: str  # token | user
    name: str
    role: str
    envs: tuple[str, ...]
    person: str

    @property
    def label(self) -> str:
        """How the audit trail names it: "token ci", "user alice"."""
        return f"{self.kind} {self.name}"

    @classmethod
    def of(cls, r: IdentityRecord) -> Identity:
        return cls(kind=r.kind, name=r.name, role=r.role, envs=r.envs, person=r.person)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise BadInput(f"invalid role {role!r}: use one of {', '.join(ROLES)}")
    return role


def parse_scope(value: str | None) -> list[str]:
    """'pr-*,development' -> ['pr-*', 'development']; None or '' -> [] (every environment)."""
    if not value:
        return []
    items = [item.strip() for item in value.split(",") if item.strip()]
    for item in items:
        if not _SCOPE_RE.fullmatch(item):
            raise BadInput(
                f"invalid environment scope {item!r}: an environment name or a glob of a-z, "
                "0-9, '-', '*', '?', '[]'",
                hint="for example --envs 'pr-*,development'",
            )
    return items


def _expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return now() + timedelta(seconds=lifetime_seconds(value))
    except ValueError as exc:
        raise BadInput(
            f"invalid --expires {value!r}: {exc}", hint="for example 30d or 12h"
        ) from None


def _person(kind: str, name: str, person: str | None) -> str:
    if person is None:
        return f"api:{name}"
    if not _PERSON_RE.fullmatch(person):
        raise BadInput(f"invalid person {person!r}: an account name (a-z, 0-9, '_.:@-')")
    return person


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    store: StateStore,
    name: str,
    role: str,
    *,
    envs: str | None = None,
    expires: str | None = None,
    person: str | None = None,
) -> tuple[IdentityRecord, str]:
    """A new token: (its record, the token itself, which is never stored or shown again)."""
    check_ident(name, what="token name")
    scope, until = parse_scope(envs), _expiry(expires)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = store.create_identity(
        "token",
        name,
        role=_check_role(role),
        envs=scope,
        person=_person("token", name, person),
        secret_hash=token_hash(token),
        expires_at=until,
    )
    store.audit(None, "token created", f"token {name} ({role}; scope {','.join(scope) or '*'})")
    return record, token


def add_user(
    store: StateStore,
    name: str,
    role: str,
    password: str,
    *,
    envs: str | None = None,
    person: str | None = None,
) -> IdentityRecord:
    from argon2 import PasswordHasher

    check_ident(name, what="user name")
    if len(password) < 12:
        raise BadInput("a password needs at least 12 characters", hint="use a passphrase")
    record = store.create_identity(
        "user",
        name,
        role=_check_role(role),
        envs=parse_scope(envs),
        person=_person("user", name, person),
        secret_hash=PasswordHasher().hash(password),
        expires_at=None,
    )
    store.audit(None, "user added", f"user {name} ({role})")
    return record


def revoke(store: StateStore, kind: str, name: str) -> None:
    if store.get_identity(kind, name) is None:
        raise BadInput(f"no {kind} named {name!r}", hint=f"`envplane {kind} list` shows them")
    if store.revoke_identity(kind, name):
        store.audit(None, f"{kind} revoked", f"{kind} {name}")


def _usable(record: IdentityRecord | None) -> IdentityRecord:
    if record is None or record.revoked_at is not None:
        raise NotSignedIn("unknown or revoked credentials", hint="ask an admin for a token")
    if record.expires_at is not None and record.expires_at <= now():
        raise NotSignedIn(
            f"the {record.kind} {record.name!r} has expired", hint="ask for a new one"
        )
    return record


# Last use is written at most this often per identity: a write per request would cost
# every read an fsync; "last used" to the minute is what `token list` needs.
TOUCH_EVERY = timedelta(seconds=60)


def _touch(store: StateStore, record: IdentityRecord) -> None:
    if record.last_used_at is None or now() - record.last_used_at > TOUCH_EVERY:
        store.touch_identity(record.kind, record.name)


def sign_in_token(store: StateStore, token: str) -> Identity:
    """The identity a token stands for; NotSignedIn when it is unknown, revoked or expired."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise NotSignedIn("unknown or revoked credentials", hint="ask an admin for a token")
    record = _usable(store.identity_by_hash("token", token_hash(token)))
    _touch(store, record)
    return Identity.of(record)


def current(store: StateStore, kind: str, name: str) -> Identity:
    """The identity behind a session, checked again: revoked or expired ends the session."""
    record = _usable(store.get_identity(kind, name))
    _touch(store, record)
    return Identity.of(record)


# A hash to verify against when the user does not exist, so that a wrong name costs as long
# as a wrong password (the answer's timing does not tell which names exist).
_DUMMY: list[str] = []


def sign_in_user(store: StateStore, name: str, password: str) -> Identity:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher = PasswordHasher()
    record = store.get_identity("user", name) if len(name) <= 64 else None
    if record is None:
        if not _DUMMY:
            _DUMMY.append(hasher.hash(secrets.token_hex(16)))
        encoded = _DUMMY[0]
    else:
        encoded = record.secret_hash
    try:
        hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        raise NotSignedIn("wrong user name or password", hint="check both and retry") from None
    record = _usable(record)
    _touch(store, record)
    return Identity.of(record)


def production_like(ws: Workspace, env: str) -> bool:
    """An environment whose deploys need approval (`approval_required: true`)."""
    from envplane.desired import matrix_for

    try:
        return matrix_for(ws, env).strategy_for(env).approval_required
    except BadInput:
        return False  # not in the matrix: the operation itself will say so


def in_scope(identity: Identity, env: str, *, production: bool) -> bool:
    """Every environment when the scope is empty; a production-like one (for a change) only
    when the scope names it exactly, not by a glob; admins reach everything."""
    if identity.role == "admin":
        return True
    if production:
        return env in identity.envs
    if not identity.envs:
        return True
    return any(fnmatch.fnmatchcase(env, pattern) for pattern in identity.envs)


def authorize(
    ws: Workspace | None, identity: Identity, action: Action, env: str | None = None
) -> None:
    """Forbidden unless `identity`'s role allows `action` (and, for a change to `env`, its
    scope reaches `env`)."""
    if action not in _MAY.get(identity.role, frozenset()):
        raise Forbidden(
            f"{identity.label} ({identity.role}) may not {action}"
            + (f" on {env!r}" if env else ""),
            hint="ask an admin for a token with a role that may",
        )
    if env is None or action not in ("change", "approve") or ws is None:
        return
    # Production-like environments are kept from deployers' globs; approving is what
    # approvers are there for, so an approver's scope is read as it is.
    production = action == "change" and production_like(ws, env)
    if not in_scope(identity, env, production=production):
        scope = ",".join(identity.envs) or "*"
        why = " (production-like: only a scope naming it reaches it)" if production else ""
        raise Forbidden(
            f"{identity.label} is scoped to {scope!r}: {env!r} is outside it{why}",
            hint="use a token whose scope names that environment",
        )


class IdentityView(View):
    """A token or a user as `token list -o json` and `GET /tokens` show it: never a hash."""

    kind: str
    name: str
    role: str
    envs: list[str]
    """Names or globs; empty: every environment (production-like ones only by name)."""
    person: str
    """Who it acts as for the four-eyes rule."""
    created_by: str
    created_at: Timestamp
    expires_at: Timestamp | None
    last_used_at: Timestamp | None
    revoked_at: Timestamp | None

    @classmethod
    def of(cls, r: IdentityRecord) -> IdentityView:
        return cls(
            kind=r.kind,
            name=r.name,
            role=r.role,
            envs=list(r.envs),
            person=r.person,
            created_by=r.created_by,
            created_at=r.created_at,
            expires_at=r.expires_at,
            last_used_at=r.last_used_at,
            revoked_at=r.revoked_at,
        )


class AuditView(View):
    id: int
    at: Timestamp
    actor: str
    """The person (an OS account, or api:NAME)."""
    environment: str | None
    action: str
    detail: str
    source: str | None
    """Where an API request came from and with which identity; null: the CLI."""
    outcome: str | None

    @classmethod
    def of(cls, e: AuditEntry) -> AuditView:
        return cls(
            id=e.id,
            at=e.at,
            actor=e.actor,
            environment=e.env,
            action=e.action,
            detail=e.detail,
            source=e.source,
            outcome=e.outcome,
        )


def identities(store: StateStore, kind: str | None = None) -> list[IdentityView]:
    return [IdentityView.of(r) for r in store.identities(kind)]


def audit_views(store: StateStore, env: str | None = None, limit: int = 100) -> list[AuditView]:
    return [AuditView.of(e) for e in store.audit_entries(env, limit=limit)]
