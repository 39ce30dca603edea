"""The dashboard's forms (POST): each is checked by `auth.changer` (session, CSRF token,
role), then calls the API's own route function with the same request model — so a change
made here takes the same access checks, jobs, locks and audit lines as one made over the
API. A started job answers with its operation's page, which streams its progress."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from envplane.api import routes_data, routes_delivery, routes_environments, routes_previews
from envplane.api.access import server_of
from envplane.api.dashboard.auth import Form, Viewer, changer, field, safe_next
from envplane.api.dashboard.render import error_page, page
from envplane.api.routes_misc import sign_in
from envplane.api.sessions import COOKIE
from envplane.api.views import (
    BackupRequest,
    DecisionRequest,
    DeployRequest,
    ExtendRequest,
    PromoteRequest,
    RestoreRequest,
    SessionRequest,
)
from envplane.errors import BadInput, EnvplaneError
from envplane.service.delivery import GateClosed
from envplane.service.identities import Action, NotSignedIn

router = APIRouter(include_in_schema=False)


def see(path: str) -> RedirectResponse:
    return RedirectResponse(path, 303)  # after a POST: the browser GETs the result


def job_page(answer: Response) -> RedirectResponse:
    """A route's JobView answer (202, or 200 when it ended already) -> its operation's page."""
    doc = json.loads(bytes(answer.body))
    return see(f"/ui/operations/{doc.get('operation_id') or doc['job_id']}")


def act(
    request: Request, form: dict[str, str], action: Action, back: str,
    work: Callable[[Viewer], Response],
) -> Response:  # fmt: skip
    """Check the form's caller, run `work`; a refusal is the error page with its status."""
    try:
        me = changer(request, form, action)
    except NotSignedIn:
        return see("/ui/sign-in?next=" + urllib.parse.quote(back))
    except EnvplaneError as exc:
        return error_page(exc, back=back)
    try:
        return work(me)
    except EnvplaneError as exc:
        return error_page(exc, who=me.call.identity, csrf=me.csrf, back=back)


@router.post("/ui/sign-in")
def sign_in_form(request: Request, form: Form) -> Response:
    """Through the API's POST /session: its throttle, its audit line, its cookie."""
    token, user, password = (
        field(form, "token"),
        field(form, "user", limit=64),
        form.get("password"),
    )
    body = SessionRequest(token=token, user=user if not token else None,
                          password=(password or None) if not token else None)  # fmt: skip
    goto = safe_next(form.get("next"))
    try:
        answer = sign_in(request, body)
    except EnvplaneError as exc:
        return page("sign_in.html", 401 if isinstance(exc, NotSignedIn) else 400, who=None,
                    csrf="", nav="", next=goto, error=exc.message)  # fmt: skip
    if answer.status_code != 200:  # throttled: its problem says how long to wait
        detail = json.loads(bytes(answer.body)).get("detail", "refused")
        return page("sign_in.html", answer.status_code, who=None, csrf="", nav="", next=goto,
                    error=detail)  # fmt: skip
    done = see(goto)
    done.raw_headers.extend((k, v) for k, v in answer.raw_headers if k == b"set-cookie")
    return done


@router.post("/ui/sign-out")
def sign_out_form(request: Request, form: Form) -> Response:
    def work(me: Viewer) -> Response:
        cookie = request.cookies.get(COOKIE, "")
        server_of(request).sessions.close(cookie)
        me.call.audit("sign-out", None, "session closed", "done")
        done = see("/ui/sign-in")
        done.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return done

    return act(request, form, "read", "/ui/", work)


@router.post("/ui/environments/{env}/backup")
def backup_form(request: Request, env: str, form: Form) -> Response:
    kind = form.get("backup_type", "full")
    if kind not in ("full", "data", "config"):
        return error_page(BadInput(f"invalid backup type {kind!r}: full, data or config"))
    body = BackupRequest.model_validate({"backup_type": kind})
    return act(request, form, "change", f"/ui/environments/{env}",
               lambda me: job_page(routes_data.take_backup(me.call, env, body)))  # fmt: skip


@router.post("/ui/environments/{env}/restore")
def restore_form(request: Request, env: str, form: Form) -> Response:
    def work(me: Viewer) -> Response:
        backup_id = field(form, "backup_id", limit=128)
        if backup_id is None:
            raise BadInput("choose the backup to restore", hint="the backups table lists them")
        if form.get("confirm") != "yes":  # the CLI asks to type the name; here: a second form
            return page(
                "confirm.html", who=me.call.identity, csrf=me.csrf, nav="",
                title=f"Restore {env}?",
                warning=f"Restoring {backup_id} replaces the data and configuration of {env}; "
                "what it holds now is lost unless a backup has it.",
                action=f"/ui/environments/{env}/restore", fields={"backup_id": backup_id},
                button=f"Replace {env} with {backup_id}", back=f"/ui/environments/{env}",
            )  # fmt: skip
        body = RestoreRequest(backup_id=backup_id, force=True)  # confirmed just now
        return job_page(routes_data.restore_backup(me.call, env, body))

    return act(request, form, "change", f"/ui/environments/{env}", work)


@router.post("/ui/environments/{env}/validate")
def validate_form(request: Request, env: str, form: Form) -> Response:
    level = field(form, "level")
    if level not in (None, "basic", "standard", "comprehensive"):
        return error_page(BadInput(f"invalid level {level!r}: basic, standard or comprehensive"))

    def work(me: Viewer) -> Response:
        routes_environments.validate_environment(me.call, env, level)  # type: ignore[arg-type]
        return see(f"/ui/environments/{env}#validations")

    return act(request, form, "change", f"/ui/environments/{env}", work)


@router.post("/ui/environments/{env}/deploy")
def deploy_form(request: Request, env: str, form: Form) -> Response:
    def work(me: Viewer) -> Response:
        release = field(form, "release", limit=64)
        if release is None:
            raise BadInput("choose the release to deploy")
        body = DeployRequest(release=release, force=form.get("force") == "yes")
        return job_page(routes_delivery.deploy_release(me.call, env, body))

    return act(request, form, "change", f"/ui/environments/{env}", work)


@router.post("/ui/promotions")
def promote_form(request: Request, form: Form) -> Response:
    """Request a promotion (recorded for approval where it is required) or, once approved,
    promote: its deploy's page."""

    def work(me: Viewer) -> Response:
        release, env = field(form, "release", limit=64), field(form, "environment", limit=64)
        if release is None or env is None:
            raise BadInput("choose a release and the environment to promote it to")
        body = PromoteRequest(
            release=release, environment=env, message=field(form, "message", limit=1000)
        )
        try:
            return job_page(routes_delivery.promote_release(me.call, body))
        except GateClosed as exc:
            if exc.gate != "approval":
                raise
            waiting = [p for p in routes_delivery.list_promotions(me.call, env)
                       if p.release == release and p.status == "pending"]  # fmt: skip
            if not waiting:
                raise
            return see(f"/ui/promotions?requested={urllib.parse.quote(waiting[0].id)}")

    return act(request, form, "change", "/ui/promotions", work)


@router.post("/ui/promotions/{promotion_id}/{verb}")
def decide_form(request: Request, promotion_id: str, verb: str, form: Form) -> Response:
    if verb not in ("approve", "reject"):
        return error_page(BadInput(f"unknown decision {verb!r}: approve or reject"))
    decide = (
        routes_delivery.approve_promotion if verb == "approve" else routes_delivery.reject_promotion
    )

    def work(me: Viewer) -> Response:
        decide(me.call, promotion_id, DecisionRequest(message=field(form, "message", limit=1000)))
        return see("/ui/promotions")

    return act(request, form, "approve", "/ui/promotions", work)


@router.post("/ui/previews/{name}/extend")
def extend_form(request: Request, name: str, form: Form) -> Response:
    def work(me: Viewer) -> Response:
        ttl = field(form, "ttl", limit=16)
        if ttl is None:
            raise BadInput("give the new lifetime, for example 24h")
        routes_previews.extend_preview(me.call, name, ExtendRequest(ttl=ttl))
        return see("/ui/previews")

    return act(request, form, "change", "/ui/previews", work)


@router.post("/ui/previews/{name}/destroy")
def destroy_preview_form(request: Request, name: str, form: Form) -> Response:
    return act(request, form, "change", "/ui/previews",
               lambda me: job_page(routes_previews.destroy_preview(me.call, name)))  # fmt: skip
