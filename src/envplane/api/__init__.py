"""The REST API: FastAPI over the service layer, the one package that imports FastAPI,
Starlette and uvicorn (`.importlinter`). `create_app` builds the app (docs/api.md);
`python -m envplane.api` (what `envplane serve` runs) serves it on uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envplane.api.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from envplane.api.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
