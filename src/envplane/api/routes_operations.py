"""Operations: the journal, one operation with its steps, its progress as Server-Sent Events,
resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, StreamingResponse

from envplane import service
from envplane.api.jobs import Job
from envplane.api.problems import PROBLEM_RESPONSES
from envplane.api.routing import JOB_RESPONSES, Changer, Reader, outcome_doc, start
from envplane.api.views import JobView, OperationDetail
from envplane.errors import BadInput
from envplane.events import OperationFinished, OperationStarted, StepFinished, StepStarted
from envplane.service.results import OperationView

router = APIRouter(tags=["operations"])
POLL = 0.2  # seconds between looks at a running job's events
MAX_REF = 64


def _check_ref(ref: str) -> str:
    if len(ref) > MAX_REF or not ref.replace("-", "").replace("_", "").isalnum():
        raise BadInput(f"invalid operation id {ref[:MAX_REF]!r}", hint="GET /operations lists them")
    return ref


@router.get("/operations", response_model=list[OperationView])
def list_operations(
    call: Reader, env: str | None = None, limit: int = Query(20, ge=1, le=1000)
) -> list[OperationView]:
    """Operations, newest first, with their steps."""
    return [OperationView.of(o) for o in service.history(call.ws, env, limit=limit)]


def _unknown(ref: str) -> BadInput:
    from envplane.errors import UnknownEnvironment

    # 404: the same status as an unknown environment (UnknownEnvironment maps to it)
    return UnknownEnvironment(f"no operation or job {ref!r}", hint="GET /operations lists them")


@router.get("/operations/{ref}", response_model=OperationDetail)
def get_operation(call: Reader, ref: str) -> OperationDetail:
    """An operation (by operation id, or the job id a 202 gave) with its steps, and the job
    that runs it here."""
    _check_ref(ref)
    job = call.server.jobs.get(ref)
    op_id: str | None = ref
    if job is not None and ref == job.id:  # a job id: its first operation, once it has one
        op_id = job.operation_ids[0] if job.operation_ids else None
    record = call.ws.store.get_operation(op_id) if op_id else None
    if record is None and job is None:
        raise _unknown(ref)
    return OperationDetail(
        operation=OperationView.of(record) if record else None,
        job=JobView.of(job) if job else None,
    )


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event.get('type', 'message')}\ndata: {json.dumps(event)}\n\n"


async def _from_job(job: Job) -> AsyncIterator[str]:
    seen = 0
    while True:
        events, ended = job.events_since(seen)
        for event in events:
            yield _sse(event)
        seen += len(events)
        if ended and not events:
            yield _sse({"type": "end", "state": job.state})
            return
        await asyncio.sleep(POLL)


def _from_journal(record: Any) -> list[str]:
    """A finished (or foreign) operation's events, rebuilt from its journal."""
    out = [asdict(OperationStarted(record.id, record.kind, record.env))]
    total = len(record.steps)
    for position, step in enumerate(record.steps, 1):
        out.append(
            asdict(
                StepStarted(record.id, step.index, position, total, step.resource_key, step.action)
            )
        )
        if step.finished_at is not None and step.status in ("done", "failed"):
            seconds = (step.finished_at - step.started_at).total_seconds()
            out.append(
                asdict(
                    StepFinished(
                        record.id,
                        step.index,
                        step.resource_key,
                        step.action,
                        step.status,
                        round(seconds, 3),
                        step.detail,
                    )
                )
            )
    if record.status in ("succeeded", "failed"):
        out.append(
            asdict(
                OperationFinished(record.id, record.kind, record.env, record.status, record.error)
            )
        )
    out.append({"type": "end", "state": record.status})
    return [_sse(e) for e in out]


@router.get(
    "/operations/{ref}/events",
    response_class=StreamingResponse,
    responses={
        **PROBLEM_RESPONSES,
        200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"},
    },
)
def operation_events(call: Reader, ref: str) -> StreamingResponse:
    """The operation's progress as Server-Sent Events (`event:` the type, `data:` the JSON
    event), live while this server runs it, else from the journal; ends with `end`."""
    _check_ref(ref)
    job = call.server.jobs.get(ref)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    if job is not None:
        return StreamingResponse(_from_job(job), media_type="text/event-stream", headers=headers)
    record = call.ws.store.get_operation(ref)
    if record is None:
        raise _unknown(ref)

    async def replay() -> AsyncIterator[str]:
        for chunk in _from_journal(record):
            yield chunk

    return StreamingResponse(replay(), media_type="text/event-stream", headers=headers)


@router.post(
    "/operations/{ref}/resume", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def resume_operation(call: Changer, ref: str) -> JSONResponse:
    """Finish an interrupted or failed operation (as `envplane resume`)."""
    _check_ref(ref)
    record = call.ws.store.get_operation(ref)
    if record is None:
        raise _unknown(ref)
    call.allow("change", record.env)
    return start(call, "resume", record.env, lambda ws: outcome_doc(service.resume(ws, ref)))
