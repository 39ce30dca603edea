"""Who is looking at a page, and may a form change something.

The dashboard signs in through the API's own `POST /session` (the same throttle, audit and
cookie) and then reads the same session. A page needs a session (else the sign-in page); a
form that changes something must carry the session's CSRF token in its `csrf_token` field —
the form-post twin of the API's `X-CSRF-Token` header, compared the same way — or it is
refused with 403 and audited, before the form's request is even looked at.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from envplane.api.access import Call, server_of, source_of
from envplane.api.sessions import COOKIE, Session, csrf_matches
from envplane.errors import BadInput
from envplane.service.identities import Action, Forbidden, NotSignedIn, authorize, current

MAX_FORM = 64 * 1024  # bytes: the dashboard's forms are a few fields


@dataclass
class Viewer:
    """The caller of a page: what the API's routes take, and the session for the forms."""

    call: Call
    session: Session

    @property
    def csrf(self) -> str:
        return self.session.csrf

    def may(self, action: Action, env: str | None = None) -> bool:
        """Whether a button for `action` (on `env`) is shown: the server checks again."""
        try:
            authorize(self.call.ws if env else None, self.call.identity, action, env)
        except Forbidden:
            return False
        return True


def _session(request: Request) -> Session:
    cookie = request.cookies.get(COOKIE)
    session = server_of(request).sessions.get(cookie) if cookie else None
    if session is None:
        raise NotSignedIn("not signed in, or the session has ended", hint="sign in again")
    return session


def viewer(request: Request) -> Viewer:
    """The signed-in caller of a page (NotSignedIn: the page redirects to sign in)."""
    server, session = server_of(request), _session(request)
    identity = current(server.store, session.kind, session.name)  # revoked: signed out
    return Viewer(
        Call(server, identity, source_of(request), request.method, request.url.path), session
    )


async def read_form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body as {field: last value} (no multipart: the
    dashboard's forms upload nothing)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise BadInput(f"form too large ({len(body)} bytes, at most {MAX_FORM})")
    try:
        pairs = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadInput("the form is not UTF-8 text") from None
    return dict(pairs)


Form = Annotated[dict[str, str], Depends(read_form)]


def changer(request: Request, form: dict[str, str], action: Action) -> Viewer:
    """The caller of a form that changes something: signed in, the CSRF token matching, the
    role allowing `action` at all (the route checks the environment's scope). Refusals are
    audited like the API's."""
    me = viewer(request)
    call = me.call
    if not csrf_matches(me.session, form.get("csrf_token")):
        call.audit(f"{call.method} {call.path}", None, "form without its CSRF token", "denied")
        raise Forbidden(
            "this form did not carry the session's CSRF token",
            hint="reload the page and submit the form again",
        )
    try:
        authorize(None, call.identity, action)
    except Forbidden as exc:
        call.audit(f"{call.method} {call.path}", None, exc.message, "denied")
        raise
    return me


def field(form: dict[str, str], name: str, *, limit: int = 200) -> str | None:
    """A form field's stripped value; None when empty or absent."""
    value = form.get(name, "").strip()
    if len(value) > limit:
        raise BadInput(f"the field {name!r} is too long (at most {limit} characters)")
    return value or None


def safe_next(value: str | None) -> str:
    """Where to go after signing in: only a dashboard path of this server (no open redirect)."""
    if value and value.startswith("/ui/") and "//" not in value and "\\" not in value:
        return value
    return "/ui/"
