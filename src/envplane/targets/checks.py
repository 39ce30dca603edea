"""What a target's validator produces (one `Check` per probe) and what it is given to probe.

The levels, the report and JUnit output live in `envplane.validate`; a driver only knows how to
check its own running parts, area by area."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from envplane.render.model import DesiredEnvironment
    from envplane.targets.base import EnvContext, Target

Status = Literal["pass", "fail", "skip"]

# The seed's five validation areas, plus the smoke test.
AREAS = ("infrastructure", "applications", "networking", "monitoring", "security", "smoke")


@dataclass(frozen=True)
class Check:
    category: str
    name: str
    status: Status
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Subject:
    """One environment as validation sees it: its driver, its context and what it is made of
    (as the store recorded it), and the few facts of the state store a check needs."""

    target: Target
    ctx: EnvContext
    desired: DesiredEnvironment
    secret_names: Callable[[], Sequence[str]]  # the environment's secrets, listed by the store
    store_url: str  # the state store's database URL


class Validator(Protocol):
    def check(self, area: str, subject: Subject) -> list[Check]:
        """The checks of one area (one of AREAS) against the running environment."""
        ...


def timed(category: str, name: str, fn: Callable[[], tuple[Status, str]]) -> Check:
    """Run one probe; a probe that crashes is a failed check, named."""
    started = time.monotonic()
    try:
        status, detail = fn()
    except Exception as exc:
        status, detail = "fail", f"{type(exc).__name__}: {exc}"
    return Check(category, name, status, detail, time.monotonic() - started)
