"""Errors as `application/problem+json` (RFC 9457): type, title, status, detail, and the
CLI's `hint`. The message and hint are the ones the CLI prints; a request never gets a
traceback (an unexpected error is a 500 that says only that, and the server's log says more).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from envplane.errors import (
    Blocked,
    EnvplaneError,
    LockHeld,
    MatrixError,
    OperationFailed,
    TransientError,
    UnknownEnvironment,
)
from envplane.service.identities import Forbidden, NotSignedIn

MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("envplane.api")


class Problem(BaseModel):
    type: str
    """A URI naming the kind of problem: "about:blank" or "urn:envplane:<kind>"."""
    title: str
    status: int
    detail: str
    hint: str | None = None
    """What to do next (the CLI's hint)."""
    errors: list[dict[str, str]] | None = None
    """Validation errors: one {"field", "message"} per field."""
    holder: str | None = None
    """For a held lock: the operation that holds it."""


TITLES = {
    400: "Bad input",
    401: "Not signed in",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Blocked",
    422: "Invalid request",
    429: "Too many failed sign-ins",
    500: "Internal error",
    503: "Retry later",
}


# The problems a route may answer with, as documented in the OpenAPI (500 is never planned).
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": TITLES[status]}
    for status in (400, 401, 403, 404, 409, 422, 429, 503)
}


def status_of(exc: EnvplaneError) -> tuple[int, str]:
    if isinstance(exc, NotSignedIn):
        return 401, "not-signed-in"
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, UnknownEnvironment):
        return 404, "unknown-environment"
    if isinstance(exc, MatrixError):
        return 422, "matrix"
    if isinstance(exc, LockHeld):
        return 409, "lock-held"
    if isinstance(exc, Blocked):
        return 409, "blocked"
    if isinstance(exc, TransientError):
        return 503, "transient"
    if isinstance(exc, OperationFailed):
        return 409, "operation-failed"  # its outcome, not a server fault: see the journal
    if exc.exit_code == 2:
        return 400, "bad-input"
    return 409, "failed"


def problem_of(exc: EnvplaneError) -> Problem:
    status, kind = status_of(exc)
    return Problem(
        type=f"urn:envplane:{kind}",
        title=TITLES.get(status, "Error"),
        status=status,
        detail=exc.message,
        hint=exc.hint,
        holder=exc.holder if isinstance(exc, LockHeld) else None,
    )


def respond(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(part) for part in loc)


def install(app: FastAPI) -> None:
    @app.exception_handler(EnvplaneError)
    async def envplane_error(_request: Request, exc: EnvplaneError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, NotSignedIn) else None
        if isinstance(exc, TransientError):
            headers = {"Retry-After": "2"}
        return respond(problem_of(exc), headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e["loc"]), "message": str(e["msg"])} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return respond(
            Problem(
                type="urn:envplane:invalid-request",
                title="Invalid request",
                status=422,
                detail=detail or "the request is not valid",
                hint="see /openapi.json for what this route takes",
                errors=errors,
            )
        )

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
        return respond(
            Problem(
                type="about:blank",
                title=TITLES.get(exc.status_code, "Error"),
                status=exc.status_code,
                detail=detail,
            ),
            dict(exc.headers) if exc.headers else None,
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return respond(
            Problem(
                type="urn:envplane:internal",
                title="Internal error",
                status=500,
                detail=f"internal error ({type(exc).__name__}); the server's log has details",
            )
        )
