"""Templates to responses: one autoescaping Jinja2 environment, the headers every page gets
(a Content-Security-Policy that allows only this server's own script and stylesheet, so an
injected tag could run nothing), and the error page."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from envplane.api.dashboard import TEMPLATES
from envplane.api.problems import status_of
from envplane.errors import EnvplaneError

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(TEMPLATES)),
    autoescape=True,  # every value is escaped; templates never mark one safe
    undefined=jinja2.StrictUndefined,  # a misspelt name is a bug, not an empty cell
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: Any) -> str:
    """ "2026-12-01 17:30:04 UTC" from a datetime or an ISO string; "—" for nothing."""
    if value is None or value == "":
        return "—"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.1f} min"


def _money(value: Decimal | str | None) -> str:
    return "—" if value is None else f"${Decimal(value):,.2f}"


_env.filters.update(when=_when, seconds=_seconds, money=_money)


def page(template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def error_page(
    exc: EnvplaneError, *, who: Any = None, csrf: str = "", back: str = "/ui/"
) -> HTMLResponse:
    """The CLI's message and hint, with the status the API would answer."""
    status, kind = status_of(exc)
    return page(
        "error.html",
        status,
        title="Refused" if status in (403, 409) else "Error",
        message=exc.message,
        hint=exc.hint,
        kind=kind,
        who=who,
        back=back if back.startswith("/ui/") else "/ui/",
        csrf=csrf,
        nav="",
    )
