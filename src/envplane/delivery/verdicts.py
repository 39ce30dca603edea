"""How a rollout ends, on every target: rolled back, paused, or what it measured; and the
one rule for acting on an analysis verdict (pass, a failure counted toward the limit, an
inconclusive check that pauses or fails)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from envplane.engine import steps as engine_steps
from envplane.errors import Blocked, OperationFailed

if TYPE_CHECKING:
    from envplane.delivery import analysis
    from envplane.matrix.models import Analysis
    from envplane.state.records import StepAction
    from envplane.state.store import StateStore
    from envplane.workspace import Workspace


class RolledBack(OperationFailed):
    """The new version failed its analysis or a step: the old one runs again, everywhere."""


class Paused(Blocked):
    """A canary holds at a step until `envplane promote --continue` (exit 3)."""


@dataclass
class Report:
    """What the rollout measured, kept on its record (`envplane status -o json`)."""

    downtime_seconds: float | None = None
    switch_seconds: float | None = None
    analysis: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"analysis": self.analysis[-20:]}
        if self.downtime_seconds is not None:
            out["downtime_seconds"] = round(self.downtime_seconds, 3)
        if self.switch_seconds is not None:
            out["switch_seconds"] = round(self.switch_seconds, 3)
        return out


def act_on_verdict(
    verdict: analysis.Verdict,
    failures: int,
    a: Analysis,
    *,
    about: str,
    service: str,
    where: tuple[str, str],
    progress: Callable[[str], None],
    phase: Callable[..., None],
) -> int:
    """Act on one check's verdict, the same on every target: -1 when it passed; else the
    failed checks so far. An inconclusive check pauses (or fails, if the matrix says so);
    `failure_limit` failed checks raise, and the rollout rolls back. `where`: (environment,
    release)."""
    env, release_id = where
    progress(f"{about}: analysis {verdict.result}: {verdict.reason}")
    if verdict.result == "pass":
        return -1
    if verdict.result == "inconclusive":
        if a.inconclusive == "fail":
            raise OperationFailed(f"analysis inconclusive: {verdict.reason}")
        # Never passed silently: the rollout holds where it is (the new version keeps the
        # share it has) until an operator continues or rolls it back.
        phase(f"{service}: inconclusive", reason=verdict.reason)
        raise Paused(
            f"the rollout of {release_id} in {env} is paused: analysis inconclusive "
            f"({verdict.reason})",
            hint=f"send it traffic and continue (envplane promote --continue --to {env}), "
            f"or roll it back (envplane rollback {env})",
        )
    failures += 1
    if failures >= a.failure_limit:
        raise OperationFailed(
            f"analysis failed {failures} time(s) (limit {a.failure_limit}): {verdict.reason}"
        )
    return failures


class JournaledSteps:
    """What every rollout shares: each move a journaled step of its operation (numbered on from
    `index`), and its phase on the rollout's record."""

    ws: Workspace
    op_id: str
    rollout_id: str
    index: int

    def step(
        self,
        key: str,
        action: StepAction,
        work: Callable[[], None],
        record: Callable[[StateStore], None] | None = None,
    ) -> None:
        try:
            engine_steps.run(
                self.ws.store,
                self.op_id,
                [engine_steps.Step(key, action, work, record=record)],
                first_index=self.index,
                events=self.ws.events,
            )
        except OperationFailed as exc:
            # The runner wraps what a step raised; a pause is not a failure to roll back.
            if isinstance(exc.__cause__, Paused):
                raise exc.__cause__ from None
            raise
        finally:
            self.index += 1

    def phase(self, phase: str, **detail: Any) -> None:
        self.ws.store.update_rollout(self.rollout_id, phase=phase, detail=detail or None)
