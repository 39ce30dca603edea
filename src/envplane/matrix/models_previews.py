"""`previews:` — per-branch environments, their lifetime and quotas (issue 13)."""

from __future__ import annotations

from envplane.matrix.modelbase import StrictModel


class PreviewsSpec(StrictModel):
    """Filled in by the previews work: `from:`, ttl, max_ttl, sleep_after, quotas."""
