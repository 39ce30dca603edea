"""Environments: list, get, plan, create, update, destroy, validate, drift, delivery status."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter

from envplane import service
from envplane.api.routing import JOB_RESPONSES, Changer, Reader, outcome_doc, start
from envplane.api.views import CreateRequest, DestroyRequest
from envplane.errors import BadInput, LockHeld
from envplane.names import check_env_name
from envplane.service.delivery import StatusView
from envplane.service.delivery import status as delivery_status
from envplane.service.listing import EnvironmentSummary, environment_summaries
from envplane.service.results import EnvironmentView, SavedPlanView, ValidationView
from envplane.workspace import Workspace

router = APIRouter(tags=["environments"])


_SUMMARIES = TypeAdapter(list[EnvironmentSummary])


@router.get("/environments", response_model=list[EnvironmentSummary])
def list_environments(call: Reader) -> Response:
    """Every environment the matrix names or the store records, as recorded (no live look:
    `GET /environments/{env}` asks the target)."""
    # The document is kept while the store's environments and the matrix are unchanged
    # (one small query says so), and serialised once by pydantic-core (FastAPI would
    # validate 1,000 models again first).
    ws = call.ws
    try:
        matrix: object = ws.matrix
    except BadInput:
        matrix = None  # listed from the store alone
    key = (ws.store.environments_version(), id(matrix))
    kept = call.server.listing
    if kept is None or kept[0] != key:
        kept = (key, _SUMMARIES.dump_json(environment_summaries(ws)))
        call.server.listing = kept
    return Response(kept[1], media_type="application/json")


@router.get("/environments/{env}", response_model=EnvironmentView)
def get_environment(call: Reader, env: str, show_secrets: bool = False) -> EnvironmentView:
    """Status, endpoints, services ready/desired, release, last operation; passwords in URLs
    only with `show_secrets` (admin)."""
    if show_secrets:
        call.allow("secrets", env)
        call.audit("show-secrets", env, "endpoints with passwords", "allowed")
    return EnvironmentView.of(service.info(call.ws, env), show_secrets=show_secrets)


@router.get("/environments/{env}/plan", response_model=SavedPlanView)
def plan_environment(
    call: Reader, env: str, target: str | None = None, template: str | None = None
) -> SavedPlanView:
    """What create (or update, if it exists) would do; changes nothing."""
    return SavedPlanView.of(service.plan(call.ws, env, target=target, template=template))


@router.get("/environments/{env}/status", response_model=StatusView)
def environment_status(call: Reader, env: str) -> StatusView:
    """The live release, what is in flight, the last rollouts."""
    return delivery_status(call.ws, env)


@router.get("/environments/{env}/drift", response_model=dict[str, Any])
def environment_drift(call: Reader, env: str) -> dict[str, Any]:
    """What runs against what envplane applied (as `envplane drift ENV -o json`)."""
    from envplane.service.drift import drift

    report: dict[str, Any] = drift(call.ws, env).to_json()
    return report


@router.post("/environments/{env}/validate", response_model=ValidationView)
def validate_environment(
    call: Changer,
    env: str,
    level: Literal["basic", "standard", "comprehensive"] | None = None,
) -> ValidationView:
    """Run the checks (recorded: a passed validation opens the promotion gate)."""
    check_env_name(env)
    call.allow("change", env)
    report = service.validate(call.ws, env, level=level)
    call.audit("validate", env, f"{report.level}: {'ok' if report.ok else 'failed'}", "done")
    return ValidationView.of(report)


@router.post("/environments", status_code=202, responses=JOB_RESPONSES, response_model=None)
def create_environment(call: Changer, body: CreateRequest) -> JSONResponse:
    """Create an environment from the matrix: 202 once its operation holds the lock."""
    env = check_env_name(body.name)
    call.allow("change", env)
    # The lock first, under the id the operation will have (create takes it over: same id,
    # same process): of two racing creates exactly one gets its 202, the other a 409 naming
    # the holder - never a 202 followed by "already exists".
    store = call.ws.store
    op_id = store.new_operation_id()
    try:
        store.acquire_lock(env, op_id)
    except LockHeld as exc:
        call.audit("create", env, exc.message, "refused")
        raise

    def work(ws: Workspace) -> dict[str, Any]:
        try:
            done = service.create(ws, env, template=body.template, target=body.target, op_id=op_id)
        finally:
            ws.store.release_lock(env, op_id)  # what create did not take over (a refusal)
        return outcome_doc(done)

    return start(call, "create", env, work)


@router.post(
    "/environments/{env}/update", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def update_environment(call: Changer, env: str) -> JSONResponse:
    """Apply what changed in the matrix since the environment was last applied."""
    check_env_name(env)
    call.allow("change", env)
    return start(call, "update", env, lambda ws: outcome_doc(service.update(ws, env)))


@router.delete("/environments/{env}", status_code=202, responses=JOB_RESPONSES, response_model=None)
def destroy_environment(
    call: Changer, env: str, force: bool = Query(False, description=DestroyRequest.__doc__)
) -> JSONResponse:
    """Destroy the environment and verify nothing of it remains (`force` for a
    production-like one, as on the CLI)."""
    check_env_name(env)
    call.allow("change", env)
    return start(
        call, "destroy", env, lambda ws: outcome_doc(service.destroy(ws, env, force=force))
    )
