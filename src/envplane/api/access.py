"""Who is calling, and may they: the one dependency every route declares.

`needs(action)` identifies the caller (a bearer token, or a session cookie plus its CSRF token
on anything but a read), checks the role may do `action` at all, and gives the route a `Call`:
the caller's Workspace (acting as their person) and `allow`/`audit` for the checks that need
the environment (scope, production-like). Every refusal is audited: who, what, which
environment, from where. Secrets (tokens, passwords, cookies) are never written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from envplane.api.sessions import COOKIE, CSRF_HEADER, csrf_matches
from envplane.service.identities import (
    Action,
    Forbidden,
    Identity,
    NotSignedIn,
    authorize,
    current,
    sign_in_token,
)

if TYPE_CHECKING:
    from envplane.api.state import ApiWorkspace, ServerState

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def server_of(request: Request) -> ServerState:
    server: ServerState = request.app.state.envplane
    return server


def source_of(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass
class Call:
    server: ServerState
    identity: Identity
    source: str
    method: str
    path: str
    _ws: ApiWorkspace | None = field(default=None, repr=False)

    @property
    def ws(self) -> ApiWorkspace:
        if self._ws is None:
            self._ws = self.server.workspace(self.identity.person)
        return self._ws

    @property
    def via(self) -> str:
        return f"api {self.source} ({self.identity.label})"

    def allow(self, action: Action, env: str | None = None) -> None:
        """Forbidden (audited) unless the identity may `action` on `env`."""
        try:
            authorize(self.ws, self.identity, action, env)
        except Forbidden as exc:
            self.audit(f"{self.method} {self.path}", env, exc.message, "denied")
            raise

    def audit(self, action: str, env: str | None, detail: str, outcome: str) -> None:
        self.server.store.audit_request(
            actor=self.identity.person,
            env=env,
            action=action,
            detail=detail,
            source=self.via,
            outcome=outcome,
        )


def _identify(server: ServerState, request: Request) -> tuple[Identity, bool]:
    """(the identity, whether it came by session cookie)."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise NotSignedIn(
                "the Authorization header must be 'Bearer TOKEN'",
                hint="create a token with `envplane token create`",
            )
        return sign_in_token(server.store, token.strip()), False
    cookie = request.cookies.get(COOKIE)
    if cookie:
        session = server.sessions.get(cookie)
        if session is None:
            raise NotSignedIn("the session has ended", hint="sign in again: POST /session")
        identity = current(server.store, session.kind, session.name)
        if request.method not in SAFE_METHODS and not csrf_matches(
            session, request.headers.get(CSRF_HEADER)
        ):
            raise Forbidden(
                f"a change made with a session cookie needs its CSRF token in {CSRF_HEADER}",
                hint="send the csrf_token POST /session returned",
            )
        return identity, True
    raise NotSignedIn(
        "no credentials: send 'Authorization: Bearer TOKEN' or sign in (POST /session)",
        hint="create a token with `envplane token create`",
    )


def identify(request: Request) -> Call:
    """The caller, whoever they are (no role needed): audited when refused."""
    server = server_of(request)
    where = source_of(request)
    route = f"{request.method} {request.url.path}"
    try:
        identity, _ = _identify(server, request)
    except NotSignedIn as exc:
        server.store.audit_request(
            actor="anonymous",
            env=None,
            action=route,
            detail=exc.message,
            source=f"api {where}",
            outcome="unauthenticated",
        )
        raise
    except Forbidden as exc:
        server.store.audit_request(
            actor="unknown", env=None, action=route, detail=exc.message,
            source=f"api {where}", outcome="denied",
        )  # fmt: skip
        raise
    return Call(server, identity, where, request.method, request.url.path)


def needs(action: Action) -> Callable[[Request], Call]:
    """A route's dependency: the caller, whose role may `action` (else 403, audited)."""

    def dependency(request: Request) -> Call:
        call = identify(request)
        try:
            authorize(None, call.identity, action)
        except Forbidden as exc:
            call.audit(f"{call.method} {call.path}", None, exc.message, "denied")
            raise
        return call

    dependency.__name__ = f"needs_{action}"
    return dependency
