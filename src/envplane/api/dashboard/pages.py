"""The dashboard's pages (GET): sign-in, environments, one environment, promotions, previews,
one operation; and the rows the environments list polls. Each page reads through the service
layer as the signed-in identity; none changes anything."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from envplane.api.dashboard import gather
from envplane.api.dashboard.auth import Viewer, safe_next, viewer
from envplane.api.dashboard.render import error_page, page
from envplane.api.routes_operations import get_operation
from envplane.errors import EnvplaneError
from envplane.names import check_env_name
from envplane.service.identities import NotSignedIn

router = APIRouter(include_in_schema=False)
POLL_SECONDS = 5  # how often the environments list asks for its rows again


def show(request: Request, build: Callable[[Viewer], Response]) -> Response:
    """A page for the signed-in caller; the sign-in page (303) for anyone else; the error
    page (with the API's status) when the service layer refuses."""
    try:
        me = viewer(request)
    except NotSignedIn:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/ui/sign-in?next=" + urllib.parse.quote(target), 303)
    try:
        return build(me)
    except EnvplaneError as exc:
        return error_page(exc, who=me.call.identity, csrf=me.csrf)


def common(me: Viewer, nav: str) -> dict[str, Any]:
    return {"who": me.call.identity, "csrf": me.csrf, "nav": nav, "may": me.may}


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/", 303)


@router.get("/ui/sign-in")
def sign_in_page(next: str | None = None) -> Response:
    return page("sign_in.html", who=None, csrf="", nav="", next=safe_next(next), error=None)


@router.get("/ui/")
def environments(request: Request, q: str | None = None) -> Response:
    query = (q or "").strip()[:100]

    def build(me: Viewer) -> Response:
        rows = [r for r in gather.environment_rows(me.call.ws) if gather.matches(r, query)]
        return page("environments.html", **common(me, "environments"), rows=rows, q=query,
                    poll=POLL_SECONDS)  # fmt: skip

    return show(request, build)


@router.get("/ui/rows")
def rows(request: Request) -> Response:
    """The environments list's rows as JSON (what its script polls)."""
    try:
        me = viewer(request)
    except NotSignedIn as exc:
        return JSONResponse({"detail": exc.message}, status_code=401)
    return JSONResponse([r.json() for r in gather.environment_rows(me.call.ws)])


@router.get("/ui/environments/{env}")
def environment(request: Request, env: str) -> Response:
    def build(me: Viewer) -> Response:
        check_env_name(env)
        got = gather.environment_page(me.call.ws, env)
        return page("environment.html", **common(me, "environments"), env=env, p=got,
                    may_change=me.may("change", env))  # fmt: skip

    return show(request, build)


@router.get("/ui/promotions")
def promotions(request: Request, requested: str | None = None) -> Response:
    def build(me: Viewer) -> Response:
        ws = me.call.ws
        from envplane.service import delivery

        return page(
            "promotions.html",
            **common(me, "promotions"),
            stages=gather.pipeline(ws),
            waiting=gather.pending(ws),
            recent=[
                p for p in delivery.promotions(ws)[:20] if p.status not in ("pending", "approved")
            ],
            releases=delivery.releases(ws, limit=20),
            requested=requested,
            person=me.call.identity.person,
        )

    return show(request, build)


@router.get("/ui/previews")
def previews(request: Request) -> Response:
    def build(me: Viewer) -> Response:
        from envplane.service.parity import parity_document
        from envplane.service.previews import preview_list

        ws = me.call.ws
        parity, parity_error = gather.quietly(lambda: parity_document(ws, []))
        return page("previews.html", **common(me, "previews"), previews=preview_list(ws),
                    parity=parity, parity_error=parity_error)  # fmt: skip

    return show(request, build)


@router.get("/ui/operations/{ref}")
def operation(request: Request, ref: str) -> Response:
    def build(me: Viewer) -> Response:
        detail = get_operation(me.call, ref)
        op, job = detail.operation, detail.job
        running = (job is not None and job.state == "running") or (
            job is None and op is not None and op.status == "running"
        )
        return page("operation.html", **common(me, ""), ref=ref, op=op, job=job, running=running)

    return show(request, build)
