"""The state store: environments, operations and their journal, locks, secrets, audit,
and delivery (releases, rollouts, what is live, promotions, validations).

`StateStore` is loaded on first use so that importing this package (the CLI's `--help`)
does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envplane.state.records import (
    ApprovalRecord,
    AuditRecord,
    Decision,
    EnvironmentRecord,
    EnvStatus,
    LiveRecord,
    OperationRecord,
    OperationStatus,
    PromotionRecord,
    PromotionStatus,
    ReleaseRecord,
    ResourceRecord,
    RolloutKind,
    RolloutRecord,
    RolloutStatus,
    StepAction,
    StepRecord,
    StepStatus,
    ValidationRecord,
)

if TYPE_CHECKING:
    from envplane.state.store import StateStore

__all__ = [
    "ApprovalRecord",
    "AuditRecord",
    "Decision",
    "EnvStatus",
    "EnvironmentRecord",
    "LiveRecord",
    "OperationRecord",
    "OperationStatus",
    "PromotionRecord",
    "PromotionStatus",
    "ReleaseRecord",
    "ResourceRecord",
    "RolloutKind",
    "RolloutRecord",
    "RolloutStatus",
    "StateStore",
    "StepAction",
    "StepRecord",
    "StepStatus",
    "ValidationRecord",
]


def __getattr__(name: str) -> Any:
    if name == "StateStore":
        from envplane.state.store import StateStore

        return StateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
