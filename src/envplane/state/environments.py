"""Environments and the resources recorded as created in them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from envplane.errors import BadInput
from envplane.state.base import StoreBase, check_choice, now
from envplane.state.models import EnvironmentRow, ResourceRow
from envplane.state.records import ENV_STATUSES, EnvironmentRecord, EnvStatus, ResourceRecord


def to_environment(row: EnvironmentRow) -> EnvironmentRecord:
    status: EnvStatus = row.status  # type: ignore[assignment]  # the CHECK constraint holds it
    return EnvironmentRecord(
        name=row.name,
        target=row.target,
        status=status,
        template=row.template,
        ports={str(k): int(v) for k, v in row.ports.items()},
        created_at=row.created_at,
        updated_at=row.updated_at,
        destroyed_at=row.destroyed_at,
        last_operation_id=row.last_operation_id,
        definition=dict(row.definition) if row.definition is not None else None,
    )


class EnvironmentsMixin(StoreBase):
    def get_environment(self, name: str) -> EnvironmentRecord | None:
        with self._read() as s:
            row = s.get(EnvironmentRow, self._env(name))
            return None if row is None else to_environment(row)

    def list_environments(self, include_destroyed: bool = False) -> list[EnvironmentRecord]:
        query = select(EnvironmentRow).order_by(EnvironmentRow.name)
        if not include_destroyed:
            query = query.where(EnvironmentRow.status != "destroyed")
        with self._read() as s:
            return [to_environment(row) for row in s.scalars(query)]

    def environment_summaries(self) -> list[tuple[Any, ...]]:
        """(name, status, target, template, last_operation_id, updated_at) of every
        environment not destroyed, by name: a list of 1,000 without building ORM objects
        (the REST API's `GET /environments`)."""
        e = EnvironmentRow
        query = (
            select(e.name, e.status, e.target, e.template, e.last_operation_id, e.updated_at)
            .where(e.status != "destroyed")
            .order_by(e.name)
        )
        with self._read() as s:
            return [tuple(row) for row in s.execute(query)]

    def environments_version(self) -> tuple[int, Any]:
        """(how many rows, the newest updated_at): every write to an environment's row sets
        its updated_at, so an unchanged pair means an unchanged `environment_summaries`."""
        e = EnvironmentRow
        with self._read() as s:
            count, newest = s.execute(select(func.count(), func.max(e.updated_at))).one()
        return int(count), newest

    def save_environment(
        self,
        name: str,
        *,
        target: str | None = None,
        status: EnvStatus | None = None,
        template: str | None = None,
        ports: Mapping[str, int] | None = None,
        last_operation_id: str | None = None,
        definition: Mapping[str, Any] | None = None,
    ) -> EnvironmentRecord:
        """Insert or update; only the fields given change. A new one needs a target.

        `definition` ({"extends": ..., "overrides": ...}) is how an environment the matrix
        does not name was derived; an empty mapping clears it."""
        self._env(name)
        if status is not None:
            check_choice(status, ENV_STATUSES, what="environment status")
        clean_ports = None if ports is None else _check_ports(name, ports)
        for attempt in range(2):
            try:
                return self._upsert(
                    name, target, status, template, clean_ports, last_operation_id, definition
                )
            except IntegrityError:
                if attempt:  # two first saves raced on PostgreSQL; the second one updates
                    raise
        raise AssertionError("unreachable")

    def _upsert(
        self,
        name: str,
        target: str | None,
        status: EnvStatus | None,
        template: str | None,
        ports: dict[str, int] | None,
        last_operation_id: str | None,
        definition: Mapping[str, Any] | None = None,
    ) -> EnvironmentRecord:
        at = now()
        with self._write() as s:
            row = s.get(EnvironmentRow, name)
            if row is None:
                if not target:
                    raise BadInput(
                        f"environment {name!r} is not recorded yet: its first save needs a target"
                    )
                row = EnvironmentRow(
                    name=name,
                    target=target,
                    status="planned",
                    template=None,
                    ports={},
                    created_at=at,
                    updated_at=at,
                    destroyed_at=None,
                    last_operation_id=None,
                    definition=None,
                )
                s.add(row)
            before = to_environment(row)
            if target is not None:
                row.target = target
            if status is not None and status != row.status:
                if status == "destroyed":
                    row.destroyed_at = at
                elif row.status == "destroyed":
                    # Created again under the same name: its old history stays, by name.
                    row.created_at, row.destroyed_at = at, None
                row.status = status
            if template is not None:
                row.template = template
            if ports is not None:
                row.ports = ports
            if last_operation_id is not None:
                row.last_operation_id = last_operation_id
            if definition is not None:
                row.definition = dict(definition) or None
            if to_environment(row) != before:  # a save that changes nothing leaves no trace
                row.updated_at = at
            s.flush()
            return to_environment(row)

    # Resources ---------------------------------------------------------------------------

    def resources(self, env: str) -> dict[str, ResourceRecord]:
        query = select(ResourceRow).where(ResourceRow.env == self._env(env))
        with self._read() as s:
            return {
                row.key: ResourceRecord(
                    env=row.env,
                    key=row.key,
                    kind=row.kind,
                    digest=row.digest,
                    spec=row.spec,
                    updated_at=row.updated_at,
                )
                for row in s.scalars(query.order_by(ResourceRow.key))
            }

    def record_resource(
        self, env: str, key: str, kind: str, digest: str, spec: Mapping[str, Any]
    ) -> None:
        self._env(env)
        if not key.startswith(f"{kind}/") or key == f"{kind}/":
            raise BadInput(f"resource key {key!r} must read '{kind}/<name>' (kind {kind!r})")
        with self._write() as s:
            row = s.get(ResourceRow, (env, key))
            if row is None:
                s.add(
                    ResourceRow(
                        env=env,
                        key=key,
                        kind=kind,
                        digest=digest,
                        spec=dict(spec),
                        updated_at=now(),
                    )
                )
            else:
                row.kind, row.digest, row.spec, row.updated_at = kind, digest, dict(spec), now()

    def forget_resource(self, env: str, key: str) -> None:
        with self._write() as s:
            s.execute(
                delete(ResourceRow).where(ResourceRow.env == self._env(env), ResourceRow.key == key)
            )


def _check_ports(env: str, ports: Mapping[str, int]) -> dict[str, int]:
    clean: dict[str, int] = {}
    for key, port in ports.items():
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise BadInput(f"environment {env!r}: port {key!r} = {port!r} is not a TCP port")
        clean[str(key)] = port
    return clean
