"""The state store: environments, operations and their journal, locks, secrets, audit.

`StateStore` is loaded on first use so that importing this package (the CLI's `--help`)
does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from envplane.state.records import (
    AuditRecord,
    EnvironmentRecord,
    EnvStatus,
    OperationRecord,
    OperationStatus,
    ResourceRecord,
    StepAction,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from envplane.state.store import StateStore

__all__ = [
    "AuditRecord",
    "EnvStatus",
    "EnvironmentRecord",
    "OperationRecord",
    "OperationStatus",
    "ResourceRecord",
    "StateStore",
    "StepAction",
    "StepRecord",
    "StepStatus",
]


def __getattr__(name: str) -> Any:
    if name == "StateStore":
        from envplane.state.store import StateStore

        return StateStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
