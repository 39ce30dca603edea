"""The sandbox's bounds (module constants, so a test can lower them) and its refusals."""

from __future__ import annotations

from jinja2 import (
    TemplateError,
    TemplateNotFound,
)
from jinja2.exceptions import SecurityError

MAX_TEMPLATE_BYTES = 1 << 20


MAX_OUTPUT_CHARS = 1 << 20


MAX_RANGE = 10_000


MAX_STEPS = 1_000_000


MAX_WORK_CHARS = 16 << 20


MAX_RENDER_SECONDS = 5.0


MAX_INT_BITS = 1 << 16


BOUNDS_HINT = (
    "template rendering is bounded (1 MiB per file and per value, range() of 10,000, "
    "1,000,000 steps, 5 s): see 'Template bounds' in docs/matrix.md"
)


class TemplateBound(SecurityError):
    """A bound of rendering was reached."""


class IncludeRefused(TemplateNotFound):
    """An include/import/extends of a file outside the template directory."""


class TemplateUnreadable(TemplateError):
    """A template file too large or not UTF-8."""


def _too_big(what: str, size: int, limit: int = MAX_OUTPUT_CHARS) -> TemplateBound:
    return TemplateBound(f"{what} of {size:,} characters; the limit is {limit:,}")


def _bounded_text(text: str) -> str:
    if len(text) > MAX_OUTPUT_CHARS:
        raise _too_big("a value", len(text))
    return text
