"""Backups (list, take, restore), clones and syncs."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from envplane import service
from envplane.api.routing import JOB_RESPONSES, Changer, Reader, start
from envplane.api.views import BackupRequest, CloneRequest, RestoreRequest, SyncRequest
from envplane.names import check_env_name
from envplane.service.results_data import (
    BackupListing,
    BackupView,
    CloneView,
    RestoreView,
    SyncView,
)
from envplane.workspace import Workspace

router = APIRouter(tags=["data"])


@router.get("/backups", response_model=list[BackupListing])
def list_backups(call: Reader, env: str | None = None) -> list[BackupListing]:
    """Backups on this machine, newest first (of one environment with `env`)."""
    if env is not None:
        check_env_name(env)
    return [BackupListing.of(b) for b in service.list_backups(call.ws, env)]


@router.post(
    "/environments/{env}/backups", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def take_backup(call: Changer, env: str, body: BackupRequest) -> JSONResponse:
    """Back the environment up (its BackupView is the job's result)."""
    check_env_name(env)
    call.allow("change", env)

    def work(ws: Workspace) -> BackupView:
        done = service.backup(ws, env, body.backup_type, logical=body.logical)
        return BackupView.of(done)

    return start(call, "backup", env, work)


@router.post(
    "/environments/{env}/restore", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def restore_backup(call: Changer, env: str, body: RestoreRequest) -> JSONResponse:
    """Restore the environment from a backup, every component verified first (`force` for a
    production-like one; the request itself is the confirmation the CLI asks for)."""
    check_env_name(env)
    call.allow("change", env)
    if body.from_env is not None:
        check_env_name(body.from_env)

    def work(ws: Workspace) -> RestoreView:
        return RestoreView.of(
            service.restore(
                ws,
                env,
                body.backup_id,
                from_env=body.from_env,
                force=body.force,
                unmasked=body.unmasked,
            )
        )

    return start(call, "restore", env, work)


@router.post(
    "/environments/{env}/clone", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def clone_environment(call: Changer, env: str, body: CloneRequest) -> JSONResponse:
    """Create the environment `env` as a clone of `source` (with its data, masked, if asked)."""
    check_env_name(env)
    check_env_name(body.source, what="source environment")
    call.allow("change", env)

    def work(ws: Workspace) -> CloneView:
        done = service.clone(ws, body.source, env, with_data=body.with_data, unmasked=body.unmasked)
        return CloneView.of(done)

    return start(call, "clone", env, work)


@router.post(
    "/environments/{env}/sync", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def sync_environment(call: Changer, env: str, body: SyncRequest) -> JSONResponse:
    """Make the environment's configuration and/or data `source`'s."""
    check_env_name(env)
    check_env_name(body.source, what="source environment")
    call.allow("change", env)

    def work(ws: Workspace) -> SyncView:
        done = service.sync(
            ws, body.source, env, sync_type=body.sync_type, force=body.force,
            unmasked=body.unmasked,
        )  # fmt: skip
        return SyncView.of(done)

    return start(call, "sync", env, work)
