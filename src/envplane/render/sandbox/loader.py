"""The loader: templates from the render's template directory and from nowhere else."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    Template,
    TemplateNotFound,
)

from envplane.render.sandbox import limits
from envplane.render.sandbox.limits import IncludeRefused, TemplateUnreadable
from envplane.render.sandbox.state import _CURRENT, _state


class _DirectoryLoader(BaseLoader):
    """Loads templates from the render's template directory, and from nowhere else."""

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        state = _state()
        root = state.root if state is not None else None
        if root is None:
            raise IncludeRefused(template, f"{template!r}: this template cannot include files")
        parts = template.replace("\\", "/").split("/")
        refused = template.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]
        path = root.joinpath(*[p for p in parts if p not in ("", ".")])
        if not refused:
            try:
                refused = not path.resolve().is_relative_to(root.resolve())
            except OSError:
                refused = True
        if refused:
            raise IncludeRefused(
                template,
                f"{template!r} is outside the template directory; only files in {root} "
                "can be included, imported or extended",
            )
        if not path.is_file():
            raise TemplateNotFound(template, f"{template!r} not found in {root}")
        size = path.stat().st_size
        if size > limits.MAX_TEMPLATE_BYTES:
            raise TemplateUnreadable(
                f"{path} has {size:,} bytes; a template may have {limits.MAX_TEMPLATE_BYTES:,}"
            )
        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TemplateUnreadable(f"{path} is not UTF-8 text") from None
        filename = str(path)
        assert state is not None
        state.sources[filename] = source
        state.step(len(source))
        return source, filename, lambda: False

    def load(
        self,
        environment: Environment,
        name: str,
        globals: Any = None,
    ) -> Template:
        source, filename, _ = self.get_source(environment, name)
        code = _compiled(environment, source, name, filename)
        return environment.template_class.from_code(
            environment, code, environment.make_globals(globals), None
        )


@functools.lru_cache(maxsize=128)
def _compiled(
    environment: Environment, source: str, name: str | None, filename: str
) -> types.CodeType:
    token = _CURRENT.set(None)  # constant folding at compile time charges nothing
    try:
        return environment.compile(source, name, filename)
    finally:
        _CURRENT.reset(token)
