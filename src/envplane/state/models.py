"""The tables, as typed SQLAlchemy 2 models. Alembic migrations, not this file, create them.

Statuses are plain strings guarded by CHECK constraints: native enums would make every new
status a migration on PostgreSQL. Only steps reference another table (their operation), so
nothing about an environment is ever deleted by a cascade: history outlives the environment.
The delivery tables (releases, rollouts, live, promotions, approvals, validations) name each
other by id without foreign keys for the same reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from envplane.state.records import (
    DECISIONS,
    ENV_STATUSES,
    OPERATION_STATUSES,
    PROMOTION_STATUSES,
    ROLLOUT_KINDS,
    ROLLOUT_STATUSES,
    STEP_ACTIONS,
    STEP_STATUSES,
)

NAME = 64  # environment names are at most 30 characters; leave room
OP_ID = 40


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; SQLite keeps no zone, so it stores naive UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("the state store only takes timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), Any: JSON()}


class EnvironmentRow(Base):
    __tablename__ = "environments"
    __table_args__ = (CheckConstraint(_one_of("status", ENV_STATUSES), name="ck_env_status"),)

    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    target: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    template: Mapped[str | None] = mapped_column(String(128))
    ports: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    destroyed_at: Mapped[datetime | None]
    last_operation_id: Mapped[str | None] = mapped_column(String(OP_ID))
    # How an environment that the matrix does not name was derived (migration 0002).
    definition: Mapped[dict[str, Any] | None]


class ResourceRow(Base):
    __tablename__ = "resources"

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class OperationRow(Base):
    __tablename__ = "operations"
    __table_args__ = (
        CheckConstraint(_one_of("status", OPERATION_STATUSES), name="ck_operation_status"),
        Index("ix_operations_env_started", "env", "started_at"),
    )

    id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    env: Mapped[str] = mapped_column(String(NAME))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(128))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    plan: Mapped[Any]
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)

    steps: Mapped[list[StepRow]] = relationship(
        order_by="StepRow.index", lazy="raise", passive_deletes=True
    )


class StepRow(Base):
    __tablename__ = "steps"
    __table_args__ = (
        CheckConstraint(_one_of("action", STEP_ACTIONS), name="ck_step_action"),
        CheckConstraint(_one_of("status", STEP_STATUSES), name="ck_step_status"),
    )

    operation_id: Mapped[str] = mapped_column(
        String(OP_ID), ForeignKey("operations.id", ondelete="CASCADE"), primary_key=True
    )
    # "index" is an SQL keyword; the attribute keeps the API's name.
    index: Mapped[int] = mapped_column("step_index", Integer, primary_key=True)
    resource_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


class LockRow(Base):
    """At most one row per environment: the primary key is the lock."""

    __tablename__ = "locks"

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    operation_id: Mapped[str] = mapped_column(String(OP_ID))
    holder: Mapped[str] = mapped_column(String(512))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    # The holder's start time in clock ticks since boot (Linux): tells a reused pid apart.
    pid_start: Mapped[int | None] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime]


class ReadLockRow(Base):
    """Shared locks: one row per (environment, operation) reading it; any number at once,
    never together with the environment's exclusive `locks` row."""

    __tablename__ = "read_locks"

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    operation_id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    holder: Mapped[str] = mapped_column(String(512))
    pid: Mapped[int] = mapped_column(Integer)
    host: Mapped[str] = mapped_column(String(255))
    pid_start: Mapped[int | None] = mapped_column(BigInteger)
    acquired_at: Mapped[datetime]


class SecretRow(Base):
    __tablename__ = "secrets"

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    ciphertext: Mapped[str] = mapped_column(Text)
    # A one-way fingerprint of the key that encrypted it: a key mix-up is named, not guessed.
    key_id: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(128))
    env: Mapped[str | None] = mapped_column(String(NAME), index=True)
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    # Since 0006, for rows of the REST API (state/identities.py writes them): where the
    # request came from, with which identity, and how it ended. Null on the CLI's rows.
    source: Mapped[str | None] = mapped_column(String(128))
    outcome: Mapped[str | None] = mapped_column(String(32))


class PlanRow(Base):
    __tablename__ = "plans"

    id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    env: Mapped[str] = mapped_column(String(NAME), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    request: Mapped[dict[str, Any]]
    plan: Mapped[dict[str, Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    applied_operation_id: Mapped[str | None] = mapped_column(String(OP_ID))


# Delivery (migration 0004) -----------------------------------------------------------------


class ReleaseRow(Base):
    __tablename__ = "releases"

    id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    services: Mapped[dict[str, Any]]  # service -> version
    config_digest: Mapped[str] = mapped_column(String(64))
    source_env: Mapped[str | None] = mapped_column(String(NAME))


class RolloutRow(Base):
    __tablename__ = "rollouts"
    __table_args__ = (
        CheckConstraint(_one_of("kind", ROLLOUT_KINDS), name="ck_rollout_kind"),
        CheckConstraint(_one_of("status", ROLLOUT_STATUSES), name="ck_rollout_status"),
    )

    id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)  # its operation's id
    env: Mapped[str] = mapped_column(String(NAME), index=True)
    release_id: Mapped[str] = mapped_column(String(OP_ID))
    kind: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    previous_release_id: Mapped[str | None] = mapped_column(String(OP_ID))
    detail: Mapped[dict[str, Any]]


class LiveRow(Base):
    """At most one row per environment: what runs there now."""

    __tablename__ = "live"

    env: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    release_id: Mapped[str | None] = mapped_column(String(OP_ID))
    services: Mapped[dict[str, Any]]  # service -> {"version": ..., "color": ...}
    since: Mapped[datetime]
    rollout_id: Mapped[str | None] = mapped_column(String(OP_ID))
    retained: Mapped[dict[str, Any]]  # service -> {"color", "version", "until"}
    previous_release_id: Mapped[str | None] = mapped_column(String(OP_ID))


class PromotionRow(Base):
    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint(_one_of("status", PROMOTION_STATUSES), name="ck_promotion_status"),
    )

    id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    release_id: Mapped[str] = mapped_column(String(OP_ID))
    env: Mapped[str] = mapped_column(String(NAME), index=True)  # the target environment
    from_env: Mapped[str | None] = mapped_column(String(NAME))
    requested_by: Mapped[str] = mapped_column(String(128))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    approvals_needed: Mapped[int] = mapped_column(Integer)
    rollout_id: Mapped[str | None] = mapped_column(String(OP_ID))
    message: Mapped[str | None] = mapped_column(Text)


class ApprovalRow(Base):
    """One decision per (promotion, actor): the primary key refuses a second."""

    __tablename__ = "approvals"
    __table_args__ = (CheckConstraint(_one_of("decision", DECISIONS), name="ck_approval_decision"),)

    promotion_id: Mapped[str] = mapped_column(String(OP_ID), primary_key=True)
    actor: Mapped[str] = mapped_column(String(128), primary_key=True)
    decision: Mapped[str] = mapped_column(String(8))
    at: Mapped[datetime]
    message: Mapped[str | None] = mapped_column(Text)


class ValidationRow(Base):
    __tablename__ = "validations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    env: Mapped[str] = mapped_column(String(NAME), index=True)
    level: Mapped[str] = mapped_column(String(16))
    release_id: Mapped[str | None] = mapped_column(String(OP_ID))
    passed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    summary: Mapped[dict[str, Any]]
