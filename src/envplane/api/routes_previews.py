"""Previews: per-branch environments (create, list, extend, destroy)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from envplane.api.routing import JOB_RESPONSES, Changer, Reader, start
from envplane.api.views import ExtendRequest, PreviewDestroyed, PreviewRequest
from envplane.names import check_env_name
from envplane.service import previews
from envplane.service.listing import preview_name_for
from envplane.workspace import Workspace

router = APIRouter(tags=["previews"])


@router.get("/previews", response_model=list[previews.PreviewListed])
def list_previews(call: Reader) -> list[previews.PreviewListed]:
    return previews.preview_list(call.ws)


@router.post("/previews", status_code=202, responses=JOB_RESPONSES, response_model=None)
def create_preview(call: Changer, body: PreviewRequest) -> JSONResponse:
    """Create (or refresh) the preview of a branch; its name comes from the branch."""
    name = preview_name_for(call.ws, body.branch)
    call.allow("change", name)

    def work(ws: Workspace) -> previews.PreviewCreated:
        return previews.preview_create(
            ws, body.branch, source=body.source, ttl=body.ttl, with_data=body.with_data,
            release=body.release,
        )  # fmt: skip

    return start(call, "preview create", name, work)


@router.post("/previews/{name}/extend", response_model=previews.PreviewView)
def extend_preview(call: Changer, name: str, body: ExtendRequest) -> previews.PreviewView:
    check_env_name(name)
    call.allow("change", name)
    done = previews.preview_extend(call.ws, name, body.ttl)
    call.audit("preview extend", name, body.ttl, "done")
    return done


@router.delete("/previews/{name}", status_code=202, responses=JOB_RESPONSES, response_model=None)
def destroy_preview(call: Changer, name: str) -> JSONResponse:
    check_env_name(name)
    call.allow("change", name)

    def work(ws: Workspace) -> PreviewDestroyed:
        destroyed, messages = previews.preview_destroy(ws, name)
        return PreviewDestroyed(destroyed=destroyed, messages=messages)

    return start(call, "preview destroy", name, work)
