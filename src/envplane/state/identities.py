"""Identities of the REST API (migration 0006): tokens and users, each with a role, an
environment scope, an expiry and its last use; and the audit trail's request columns (where a
request came from, how it ended).

Only a hash of a secret is ever stored: sha256 of a token (tokens are 32 random bytes, so a
fast hash is enough: there is nothing to guess), argon2id of a password (people choose those,
so the hash must be slow). Which hash, and checking a secret against it, is the service
layer's business (`service.identities`); the store keeps the strings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from envplane.errors import BadInput
from envplane.state.base import StoreBase, now
from envplane.state.models import NAME, AuditRow, Base

IDENTITY_KINDS = ("token", "user")
ROLES = ("viewer", "deployer", "approver", "admin")


class IdentityRow(Base):
    __tablename__ = "identities"
    __table_args__ = (
        CheckConstraint("kind IN ('token', 'user')", name="ck_identity_kind"),
        CheckConstraint(
            "role IN ('viewer', 'deployer', 'approver', 'admin')", name="ck_identity_role"
        ),
    )

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    envs: Mapped[list[str]] = mapped_column(JSON())
    person: Mapped[str] = mapped_column(String(128))
    secret_hash: Mapped[str] = mapped_column(String(255), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


@dataclass(frozen=True)
class IdentityRecord:
    kind: str  # token | user
    name: str
    role: str
    envs: tuple[str, ...]  # names or globs; empty: every environment
    person: str  # who this is for the four-eyes rule (an OS account's name, or api:NAME)
    secret_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    env: str | None
    action: str
    detail: str
    source: str | None  # "api 127.0.0.1 (token ci)"; None: the CLI on this host
    outcome: str | None


def _record(row: IdentityRow) -> IdentityRecord:
    return IdentityRecord(
        kind=row.kind,
        name=row.name,
        role=row.role,
        envs=tuple(row.envs or ()),
        person=row.person,
        secret_hash=row.secret_hash,
        created_by=row.created_by,
        created_at=row.created_at,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class IdentitiesMixin(StoreBase):
    def create_identity(
        self,
        kind: str,
        name: str,
        *,
        role: str,
        envs: list[str],
        person: str,
        secret_hash: str,
        expires_at: datetime | None,
    ) -> IdentityRecord:
        if kind not in IDENTITY_KINDS or role not in ROLES:
            raise BadInput(f"invalid identity kind {kind!r} or role {role!r}")
        with self._write() as s:
            if s.get(IdentityRow, (kind, name)) is not None:
                raise BadInput(
                    f"a {kind} named {name!r} exists already (revoked ones keep their name)",
                    hint=f"choose another name, or `envplane {kind} list`",
                )
            row = IdentityRow(
                kind=kind,
                name=name,
                role=role,
                envs=list(envs),
                person=person,
                secret_hash=secret_hash,
                created_by=self._me.user,
                created_at=now(),
                expires_at=expires_at,
                last_used_at=None,
                revoked_at=None,
            )
            s.add(row)
            s.flush()
            return _record(row)

    def identities(self, kind: str | None = None) -> list[IdentityRecord]:
        query = select(IdentityRow).order_by(IdentityRow.kind, IdentityRow.name)
        if kind is not None:
            query = query.where(IdentityRow.kind == kind)
        with self._read() as s:
            return [_record(r) for r in s.scalars(query)]

    def get_identity(self, kind: str, name: str) -> IdentityRecord | None:
        with self._read() as s:
            row = s.get(IdentityRow, (kind, name))
            return None if row is None else _record(row)

    def identity_by_hash(self, kind: str, secret_hash: str) -> IdentityRecord | None:
        query = select(IdentityRow).where(
            IdentityRow.kind == kind, IdentityRow.secret_hash == secret_hash
        )
        with self._read() as s:
            row = s.scalars(query).first()
            return None if row is None else _record(row)

    def touch_identity(self, kind: str, name: str) -> None:
        with self._write() as s:
            s.execute(
                update(IdentityRow)
                .where(IdentityRow.kind == kind, IdentityRow.name == name)
                .values(last_used_at=now())
            )

    def revoke_identity(self, kind: str, name: str) -> bool:
        """True when it was active and is revoked now."""
        with self._write() as s:
            done = s.execute(
                update(IdentityRow)
                .where(
                    IdentityRow.kind == kind,
                    IdentityRow.name == name,
                    IdentityRow.revoked_at.is_(None),
                )
                .values(revoked_at=now())
            )
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def audit_request(
        self,
        *,
        actor: str,
        env: str | None,
        action: str,
        detail: str,
        source: str,
        outcome: str,
    ) -> None:
        """One audit row for a request of the API: who, what, which environment, from where,
        how it ended. `env` is kept as given (a refused request may name no valid one)."""
        row = AuditRow(
            at=now(),
            actor=actor[:128],
            env=env[:NAME] if env else None,
            action=action[:64],
            detail=detail,
            source=source[:128],
            outcome=outcome[:32],
        )
        with self._write() as s:
            s.add(row)

    def audit_entries(self, env: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """Newest first, with the request columns (None on rows the CLI wrote)."""
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if env is not None:
            query = query.where(AuditRow.env == env)
        with self._read() as s:
            return [
                AuditEntry(
                    id=r.id,
                    at=r.at,
                    actor=r.actor,
                    env=r.env,
                    action=r.action,
                    detail=r.detail,
                    source=r.source,
                    outcome=r.outcome,
                )
                for r in s.scalars(query)
            ]

    def with_actor(self, actor: str) -> IdentitiesMixin:
        """The same store (one engine, one pool) recording `actor` as who acts: an API
        request's identity, for operations, decisions and the audit trail."""
        return type(self)(self._engine, self.home, replace(self._me, user=actor))
