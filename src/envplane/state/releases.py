"""Releases: immutable sets of service versions, recorded once with their config digest."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from envplane.errors import BadInput, EnvplaneError
from envplane.names import check_ident
from envplane.state.base import StoreBase, now
from envplane.state.models import (
    ReleaseRow,
)
from envplane.state.records import (
    ReleaseRecord,
)

RELEASE_ID = re.compile(r"^rel-\d{8}-\d{6}-[0-9a-f]{6}$")


def check_id(value: str, pattern: re.Pattern[str], what: str, looks_like: str) -> str:
    """`value` when it is a well-formed id of the kind `what`; bad input saying what one
    looks like (and where it is printed) otherwise."""
    if not isinstance(value, str) or not pattern.match(value):
        raise BadInput(f"invalid {what} {value!r}", hint=looks_like)
    return value


def check_release_id(release_id: str) -> str:
    return check_id(
        release_id,
        RELEASE_ID,
        "release id",
        "a release id looks like rel-20261201-091500-ab12cd (printed by `envplane release create`)",
    )


def _short(value: str, limit: int, *, what: str) -> str:
    """A free-text value that must fit its column (SQLite would not say)."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise BadInput(f"invalid {what} {value!r}: use 1 to {limit} characters")
    return value


def _stamp(prefix: str, at: datetime) -> str:
    return f"{prefix}-{at:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def _services(services: Mapping[str, str]) -> dict[str, str]:
    clean = {}
    for name, version in services.items():
        check_ident(name, what="service name")
        clean[name] = _short(version, 128, what=f"version of service {name!r}")
    return clean


def _release(row: ReleaseRow) -> ReleaseRecord:
    return ReleaseRecord(
        id=row.id,
        created_at=row.created_at,
        created_by=row.created_by,
        note=row.note,
        services=dict(row.services),
        config_digest=row.config_digest,
        source_env=row.source_env,
    )


def _no_release(release_id: str) -> EnvplaneError:
    return BadInput(
        f"no release {release_id!r} in the state store",
        hint="a release is recorded by `envplane release create`, which prints its id",
    )


class ReleasesMixin(StoreBase):
    # Releases ------------------------------------------------------------------------------

    def create_release(
        self,
        services: dict[str, str],
        *,
        config_digest: str,
        note: str | None = None,
        source_env: str | None = None,
    ) -> ReleaseRecord:
        clean = _services(services)
        _short(config_digest, 64, what="config digest")
        if source_env is not None:
            self._env(source_env)
        for _attempt in range(3):  # an id clash needs the same second and 24 random bits
            at = now()
            row = ReleaseRow(
                id=_stamp("rel", at),
                created_at=at,
                created_by=self._me.user,
                note=note,
                services=clean,
                config_digest=config_digest,
                source_env=source_env,
            )
            try:
                with self._write() as s:
                    s.add(row)
                    s.flush()
                    return _release(row)
            except IntegrityError:
                continue
        raise EnvplaneError("could not allocate a release id", hint="retry")

    def get_release(self, release_id: str) -> ReleaseRecord | None:
        with self._read() as s:
            row = s.get(ReleaseRow, check_release_id(release_id))
            return None if row is None else _release(row)

    def releases(self, limit: int = 50) -> list[ReleaseRecord]:
        """Newest first."""
        query = (
            select(ReleaseRow)
            .order_by(ReleaseRow.created_at.desc(), ReleaseRow.id.desc())
            .limit(limit)
        )
        with self._read() as s:
            return [_release(row) for row in s.scalars(query)]
