"""Sign-in (sessions), the server's own routes (health, metrics), parity and cost, and the
admin's: identities and the audit trail."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from envplane import __version__
from envplane.api.access import identify, server_of, source_of
from envplane.api.metrics import CONTENT_TYPE
from envplane.api.problems import PROBLEM_RESPONSES, Problem, respond
from envplane.api.routing import Admin, Reader
from envplane.api.sessions import COOKIE, LIFETIME
from envplane.api.views import (
    Health,
    SessionRequest,
    SessionView,
    TokenCreated,
    TokenRequest,
    WhoAmI,
)
from envplane.errors import BadInput
from envplane.names import check_env_name
from envplane.service import identities
from envplane.service.identities import AuditView, Identity, IdentityView, NotSignedIn

router = APIRouter()


def _who(identity: Identity) -> dict[str, Any]:
    return {
        "kind": identity.kind,
        "name": identity.name,
        "role": identity.role,
        "envs": list(identity.envs),
        "person": identity.person,
    }


@router.get("/healthz", response_model=Health, tags=["server"])
def healthz(request: Request) -> Health:
    """Alive, and the store answers (no credentials needed; nothing private)."""
    server = server_of(request)
    server.store.lock_holder("healthz")  # one SELECT: the store answers
    return Health(status="ok", version=__version__, jobs_running=server.jobs.running())


@router.get(
    "/metrics",
    tags=["server"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
def metrics(request: Request) -> Response:
    """Prometheus metrics: requests by route and status, operations by kind and outcome with
    their durations (no credentials needed: counts only, no names of people)."""
    return Response(server_of(request).metrics.text(), media_type=CONTENT_TYPE)


@router.post("/session", response_model=SessionView, responses=PROBLEM_RESPONSES, tags=["session"])
def sign_in(request: Request, body: SessionRequest) -> JSONResponse:
    """Sign in with a token, or a user and password: a session cookie (HttpOnly,
    SameSite=Strict; Secure over TLS) and the CSRF token every change with it must send.
    Repeated failures from one address are slowed down (429 with Retry-After) and audited."""
    server, where = server_of(request), source_of(request)
    wait = server.throttle.wait_for(where)
    if wait > 0:
        server.store.audit_request(
            actor="anonymous", env=None, action="sign-in", detail="throttled",
            source=f"api {where}", outcome="throttled",
        )  # fmt: skip
        seconds = int(wait) + 1
        return respond(
            Problem(
                type="urn:envplane:throttled",
                title="Too many failed sign-ins",
                status=429,
                detail=f"too many failed sign-ins from {where}; retry in {seconds}s",
                hint="check the token or password; each failure doubles the wait",
            ),
            {"Retry-After": str(seconds)},
        )
    try:
        if body.token is not None and body.user is None:
            identity = identities.sign_in_token(server.store, body.token)
        elif body.user is not None and body.password is not None and body.token is None:
            identity = identities.sign_in_user(server.store, body.user, body.password)
        else:
            raise BadInput(
                "sign in with either a token, or a user and a password",
                hint='{"token": "..."} or {"user": "...", "password": "..."}',
            )
    except NotSignedIn as exc:
        count = server.throttle.failed(where)
        server.store.audit_request(
            actor="anonymous", env=None, action="sign-in", detail=f"{exc.message} (failure "
            f"{count} from this address)", source=f"api {where}", outcome="unauthenticated",
        )  # fmt: skip
        raise
    server.throttle.succeeded(where)
    cookie, session = server.sessions.open(identity.kind, identity.name)
    server.store.audit_request(
        actor=identity.person, env=None, action="sign-in", detail="session opened",
        source=f"api {where} ({identity.label})", outcome="signed in",
    )  # fmt: skip
    answer = JSONResponse(SessionView(**_who(identity), csrf_token=session.csrf).model_dump())
    answer.set_cookie(
        COOKIE, cookie, max_age=int(LIFETIME), httponly=True, samesite="strict",
        secure=server.tls, path="/",
    )  # fmt: skip
    return answer


@router.get("/session", response_model=WhoAmI, tags=["session"])
def who_am_i(request: Request) -> WhoAmI:
    """Who the credentials sent are (any role)."""
    return WhoAmI(**_who(identify(request).identity))


@router.delete("/session", status_code=204, tags=["session"], response_class=Response)
def sign_out(request: Request) -> Response:
    """End the session of the cookie sent (and forget the cookie)."""
    call = identify(request)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        call.server.sessions.close(cookie)
        call.audit("sign-out", None, "session closed", "done")
    answer = Response(status_code=204)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer


@router.get("/parity", response_model=dict[str, Any], tags=["consistency"])
def parity(
    call: Reader,
    envs: Annotated[list[str] | None, Query(max_length=50)] = None,
    live: bool = False,
) -> dict[str, Any]:
    """Every setting compared across environments (default: the pipeline's), as
    `envplane parity -o json`."""
    from envplane.service.parity import parity_document

    names = [check_env_name(e) for e in envs or []]
    return parity_document(call.ws, names, live=live)


@router.get("/cost", response_model=dict[str, Any], tags=["consistency"])
def cost(
    call: Reader,
    envs: Annotated[list[str] | None, Query(max_length=50)] = None,
    at: Literal["min", "desired", "max"] = "desired",
) -> dict[str, Any]:
    """Each environment's monthly cost per resource line (as `envplane cost -o json`)."""
    from envplane.service.cost import cost as cost_of

    names = [check_env_name(e) for e in envs or []] or None
    report: dict[str, Any] = cost_of(call.ws, names, at=at).model_dump(mode="json")
    return report


@router.get("/audit", response_model=list[AuditView], tags=["admin"])
def audit(
    call: Admin, env: str | None = None, limit: int = Query(100, ge=1, le=10000)
) -> list[AuditView]:
    """The audit trail, newest first: changes and refusals of the CLI and the API."""
    if env is not None:
        check_env_name(env)
    return identities.audit_views(call.ws.store, env, limit=limit)


@router.get("/tokens", response_model=list[IdentityView], tags=["admin"])
def list_tokens(call: Admin) -> list[IdentityView]:
    """Tokens and users (never a hash or a token)."""
    return identities.identities(call.ws.store)


@router.post("/tokens", status_code=201, response_model=TokenCreated, tags=["admin"])
def create_token(call: Admin, body: TokenRequest) -> TokenCreated:
    """A new token, shown once in this answer."""
    record, token = identities.create_token(
        call.ws.store, body.name, body.role, envs=body.envs, expires=body.expires,
        person=body.person,
    )  # fmt: skip
    call.audit("token create", None, f"token {record.name} ({record.role})", "done")
    return TokenCreated(name=record.name, role=record.role, token=token)


@router.delete("/tokens/{name}", status_code=204, tags=["admin"], response_class=Response)
def revoke_token(call: Admin, name: str) -> Response:
    if len(name) > 64:
        raise BadInput("invalid token name")
    identities.revoke(call.ws.store, "token", name)
    call.audit("token revoke", None, f"token {name}", "done")
    return Response(status_code=204)
