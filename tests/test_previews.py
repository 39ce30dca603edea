"""Previews: the matrix's `previews:` block, the store's records, and real previews created,
used, extended, capped by quotas, expired and reaped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from envplane.errors import BadInput, MatrixError
from envplane.matrix.loader import load_matrix_text
from envplane.state.base import now
from envplane.state.store import StateStore
from tests.pgserver import fresh_schema_fixture, postgres_url_fixture  # noqa: F401
from tests.statekit import (  # noqa: F401  (fixtures)
    home_fixture,
    secret_key_fixture,
    store_fixture,
    store_url_fixture,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sunday" / "config"
MATRIX = (EXAMPLE / "environment-matrix.yaml").read_text()


def test_the_example_declares_previews() -> None:
    spec = load_matrix_text(MATRIX, "m.yaml").spec.previews
    assert spec is not None
    assert spec.source == "staging" and spec.prefix == "pr-"
    assert spec.ttl == 48 * 3600 and spec.max_ttl == 14 * 86400  # 14d: beyond the house's 7 days
    assert spec.quotas.max_per_creator == 3 and str(spec.quotas.monthly_cost_limit) == "500"


@pytest.mark.parametrize(
    ("old", "new", "where", "says"),
    [
        ("ttl: 48h", "ttl: 48x", "previews.ttl", "expected a duration like"),
        ("max_ttl: 14d", "max_ttl: 1h", "previews.ttl", "longer than max_ttl"),
        ("prefix: pr-", "prefix: PR/", "previews.prefix", "invalid preview prefix"),
        ("monthly_cost_limit: 500", "monthly_cost_limit: -3", "monthly_cost_limit", "USD"),
        ("max_per_creator: 3", "max_per_creator: 0", "max_per_creator", "greater than"),
        ("wake_on_request: true", "wake_on_requests: true", "wake_on_requests", "unknown key"),
        ("ttl: 48h", "ttl: 400d", "previews.ttl", "between 1s and 365d"),
    ],
)
def test_a_bad_previews_block_is_located(old: str, new: str, where: str, says: str) -> None:
    assert old in MATRIX
    with pytest.raises(MatrixError) as caught:
        load_matrix_text(MATRIX.replace(old, new), "m.yaml")
    text = str(caught.value)
    assert where in text and says in text
    line = next(i for i, t in enumerate(MATRIX.replace(old, new).splitlines(), 1) if new in t)
    assert f"m.yaml:{line}:" in text or "longer than max_ttl" in text


# The store's records (SQLite and PostgreSQL) ----------------------------------------------


def test_preview_records_round_trip(store: StateStore) -> None:
    store.save_environment("staging", target="local", status="ready")
    store.save_environment("pr-fix-login", target="local", status="ready")
    expires = now() + timedelta(hours=48)
    rec = store.record_preview(
        "pr-fix-login", branch="fix/login", source="staging", expires_at=expires
    )
    assert rec.state == "awake" and rec.creator == store.actor and rec.ended_at is None
    assert abs((rec.expires_at - expires).total_seconds()) < 1
    assert [p.env for p in store.previews()] == ["pr-fix-login"]

    asleep = store.set_preview_state("pr-fix-login", "asleep")
    assert asleep.state == "asleep" and asleep.awake_seconds >= 0
    later = asleep.state_since + timedelta(hours=5)
    assert asleep.awake_so_far(later) == asleep.awake_seconds  # asleep time does not count
    awake = store.set_preview_state("pr-fix-login", "awake")
    assert awake.awake_so_far(awake.state_since + timedelta(hours=2)) >= 7200

    extended = store.set_preview_expiry("pr-fix-login", expires + timedelta(hours=1))
    assert extended.seconds_left() > 48 * 3600

    store.end_preview("pr-fix-login")
    assert store.previews() == []
    ended = store.get_preview("pr-fix-login")
    assert ended is not None and ended.ended_at is not None  # kept as history
    with pytest.raises(BadInput, match="is not a preview"):
        store.set_preview_expiry("pr-fix-login", expires)
    again = store.record_preview(
        "pr-fix-login", branch="fix/login", source="staging", expires_at=expires
    )
    assert again.ended_at is None and again.awake_seconds == 0


def test_preview_records_refuse_bad_values(store: StateStore) -> None:
    with pytest.raises(BadInput):
        store.record_preview("Bad Name", branch="x", source="staging", expires_at=now())
    with pytest.raises(BadInput):
        store.record_preview("pr-x1", branch="", source="staging", expires_at=now())
    store.save_environment("pr-x1", target="local", status="ready")
    store.record_preview("pr-x1", branch="x1", source="staging", expires_at=now())
    with pytest.raises(BadInput, match="invalid preview state"):
        store.set_preview_state("pr-x1", "dozing")
