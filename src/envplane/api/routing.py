"""What the route modules share: starting a job and answering for it, and the dependency
shorthands (`Reader`, `Changer`, ...: the caller, whose role may do that)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import JSONResponse

from envplane.api.access import Call, needs
from envplane.api.jobs import Job, failed_before_start
from envplane.api.problems import PROBLEM_RESPONSES
from envplane.api.views import JobView
from envplane.events import Event
from envplane.workspace import Workspace

Reader = Annotated[Call, Depends(needs("read"))]
Changer = Annotated[Call, Depends(needs("change"))]
Approver = Annotated[Call, Depends(needs("approve"))]
Admin = Annotated[Call, Depends(needs("admin"))]

JOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM_RESPONSES,
    200: {"model": JobView, "description": "The job ended already (see its state)"},
}


def start(call: Call, kind: str, env: str | None, work: Callable[[Workspace], Any]) -> JSONResponse:
    """Run `work` in a worker, acting as the caller; answer once its operation holds its lock
    (202), or with the refusal the CLI would print, or with the result if it ended already."""
    server = call.server

    def make_ws(sink: Callable[[Event], None]) -> Workspace:
        return server.workspace(call.identity.person, events=sink)

    def finished(job: Job) -> None:
        outcome: str = job.state_pending
        if outcome == "failed" and not job.operation_ids:
            outcome = "refused"
        detail = f"{job.id} {', '.join(job.operation_ids)}".strip()
        if job.problem is not None:
            detail += f": {job.problem.detail}"
        call.audit(kind, env, detail, outcome)

    job = server.jobs.submit(make_ws, kind, env, call.identity.person, work, on_done=finished)
    server.jobs.wait_started(job)
    refused = failed_before_start(job)
    if refused is not None:
        raise refused  # its audit line was written when the job ended
    view = JobView.of(job)
    return JSONResponse(
        view.model_dump(mode="json"), status_code=202 if view.state == "running" else 200
    )


def outcome_doc(outcome: Any) -> dict[str, Any]:
    """An engine Outcome (create, update, destroy, resume) as the job's result."""
    return {
        "environment": outcome.environment,
        "operation_id": outcome.operation_id,
        "applied": outcome.applied,
        "seconds": round(outcome.seconds, 3),
        "summary": outcome.plan.summary(),
        "messages": list(outcome.messages),
    }
