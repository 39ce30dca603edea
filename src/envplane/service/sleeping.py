"""sleep and wake for the front doors, as the `-o json` document. Apart from `service.previews`
(which re-exports it) so that `envplane sleep` and `envplane wake` import sleep and wake only:
creating a preview (the lifecycle, data copies, delivery) is 0.2 s of CPU to import, in a
command whose goal is 1 s."""

from __future__ import annotations

from collections.abc import Callable

from envplane.plan.model import Plan
from envplane.previews import sleep as sleeping
from envplane.service.results import View
from envplane.workspace import Workspace


class SleepView(View):
    environment: str
    asleep: bool
    programs: list[str]
    """Asleep: the programs stopped; awake: what the update started again."""
    operation_id: str | None
    seconds: float
    messages: list[str]


def _slept(r: sleeping.SleepOutcome) -> SleepView:
    return SleepView(
        environment=r.environment,
        asleep=r.asleep,
        programs=r.stopped,
        operation_id=r.operation_id,
        seconds=round(r.seconds, 3),
        messages=r.messages,
    )


def sleep(ws: Workspace, env: str) -> SleepView:
    return _slept(sleeping.sleep(ws, env))


def wake(ws: Workspace, env: str, *, show_plan: Callable[[Plan], None] | None = None) -> SleepView:
    return _slept(sleeping.wake(ws, env, show_plan=show_plan))
