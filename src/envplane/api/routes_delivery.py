"""Releases, deploys, promotions (request, approve, reject)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from envplane.api.routing import JOB_RESPONSES, Approver, Changer, Reader, start
from envplane.api.views import DecisionRequest, DeployRequest, PromoteRequest, ReleaseRequest
from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.service import delivery
from envplane.service.delivery import PromotionView, ReleaseView
from envplane.workspace import Workspace

router = APIRouter(tags=["delivery"])


@router.get("/releases", response_model=list[ReleaseView])
def list_releases(call: Reader) -> list[ReleaseView]:
    return delivery.releases(call.ws)


@router.get("/releases/{release_id}", response_model=ReleaseView)
def get_release(call: Reader, release_id: str) -> ReleaseView:
    return delivery.release(call.ws, release_id)


@router.post("/releases", status_code=201, response_model=ReleaseView)
def create_release(call: Changer, body: ReleaseRequest) -> ReleaseView:
    """Record a release: SERVICE=VERSION pins, or what runs in `from_env`."""
    if body.from_env is not None:
        check_env_name(body.from_env)
    made = delivery.release_create(call.ws, body.pins, from_env=body.from_env, note=body.note)
    call.audit("release create", body.from_env, made.id, "done")
    return made


@router.post(
    "/environments/{env}/deploy", status_code=202, responses=JOB_RESPONSES, response_model=None
)
def deploy_release(call: Changer, env: str, body: DeployRequest) -> JSONResponse:
    """Deploy a release into the environment by its strategy (`force` for a production-like
    one outside a promotion, as on the CLI)."""
    check_env_name(env)
    call.allow("change", env)

    def work(ws: Workspace) -> delivery.DeployView:
        return delivery.deploy(ws, env, body.release, strategy=body.strategy, force=body.force)

    return start(call, "deploy", env, work)


@router.get("/promotions", response_model=list[PromotionView])
def list_promotions(call: Reader, env: str | None = None) -> list[PromotionView]:
    if env is not None:
        check_env_name(env)
    return delivery.promotions(call.ws, env)


@router.post("/promotions", status_code=202, responses=JOB_RESPONSES, response_model=None)
def promote_release(call: Changer, body: PromoteRequest) -> JSONResponse:
    """Promote a release into an environment behind its gates. A closed gate is a 409 naming
    it; where approval is required the first request records the promotion (its id is in the
    409's detail) for an approver; once approved, the same request deploys (202)."""
    env = check_env_name(body.environment)
    call.allow("change", env)
    gates = delivery.promote(call.ws, body.release, env, dry_run=True, message=body.message)
    if gates.gates.get("approval", "").startswith("closed"):
        # Not requested yet: record the request, exactly as `envplane promote` does (it
        # answers with the closed approval gate, naming the promotion to approve).
        try:
            delivery.promote(call.ws, body.release, env, message=body.message)
        finally:
            call.audit("promotion request", env, body.release, "requested")

    def work(ws: Workspace) -> delivery.PromoteView:
        return delivery.promote(ws, body.release, env, message=body.message)

    return start(call, "promote", env, work)


def _decide(call: Approver, promotion_id: str, verb: str, message: str | None) -> PromotionView:
    if len(promotion_id) > 64:
        raise BadInput("invalid promotion id", hint="GET /promotions lists them")
    found = [p for p in delivery.promotions(call.ws) if p.id == promotion_id]
    if found:
        call.allow("approve", found[0].environment)
    run = delivery.approve if verb == "approve" else delivery.reject
    try:
        decided = run(call.ws, promotion_id, message)
    except Exception as exc:
        call.audit(verb, found[0].environment if found else None, str(exc), "refused")
        raise
    call.audit(verb, decided.environment, f"{decided.id}: {decided.status}", "done")
    return decided


@router.post("/promotions/{promotion_id}/approve", response_model=PromotionView)
def approve_promotion(call: Approver, promotion_id: str, body: DecisionRequest) -> PromotionView:
    """Approve a pending promotion; its requester cannot (four-eyes, across CLI and API)."""
    return _decide(call, promotion_id, "approve", body.message)


@router.post("/promotions/{promotion_id}/reject", response_model=PromotionView)
def reject_promotion(call: Approver, promotion_id: str, body: DecisionRequest) -> PromotionView:
    return _decide(call, promotion_id, "reject", body.message)
