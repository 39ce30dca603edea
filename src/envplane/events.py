"""Progress as typed events: what the CLI renders with Rich and the API will stream.

A leaf module (no envplane imports) so that every layer, down to the workspace, can emit
events without importing the front doors that show them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class OperationStarted:
    operation_id: str
    kind: str
    environment: str
    resumed: bool = False
    type: Literal["operation_started"] = "operation_started"


@dataclass(frozen=True)
class OperationFinished:
    operation_id: str
    kind: str
    environment: str
    status: Literal["succeeded", "failed"]
    error: str | None = None
    type: Literal["operation_finished"] = "operation_finished"


@dataclass(frozen=True)
class StepStarted:
    operation_id: str
    index: int  # the step's index in the journal
    position: int  # 1-based among the steps this run executes
    total: int
    resource: str  # "postgres/postgres", "data/stop-services"
    action: str  # create | update | delete | stop | copy | import | mask | start | export
    type: Literal["step_started"] = "step_started"


@dataclass(frozen=True)
class StepFinished:
    operation_id: str
    index: int
    resource: str
    action: str
    status: Literal["done", "failed"]
    seconds: float
    detail: str = ""
    type: Literal["step_finished"] = "step_finished"


@dataclass(frozen=True)
class LogLine:
    message: str
    type: Literal["log"] = "log"


@dataclass(frozen=True)
class BytesDone:
    what: str  # "postgres", "redis", "storage", "config"
    done: int
    total: int | None = None  # None: not known in advance
    type: Literal["bytes"] = "bytes"


Event = OperationStarted | OperationFinished | StepStarted | StepFinished | LogLine | BytesDone
EventSink = Callable[[Event], None]


def discard(_event: Event) -> None:
    return None
