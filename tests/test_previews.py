"""Previews: the matrix's `previews:` block, the store's records, and real previews created,
used, extended, capped by quotas, expired and reaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from envplane.errors import MatrixError
from envplane.matrix.loader import load_matrix_text

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
