"""The app factory: `create_app(matrix)` is the whole API, ready for uvicorn or a test
client. The dashboard mounts itself into the same app: `create_app(routers=[...],
static={"/ui": directory})`, so it shares the sessions, the CSRF rule and the jobs."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from envplane import __version__
from envplane.api import problems
from envplane.api.jobs import Jobs
from envplane.api.metrics import Metrics
from envplane.api.problems import PROBLEM_RESPONSES
from envplane.api.sessions import Sessions, Throttle
from envplane.api.state import ServerState
from envplane.settings import Settings, resolve
from envplane.state.store import StateStore

log = logging.getLogger("envplane.api")


def _docs(app: FastAPI) -> None:
    """Swagger UI from the swagger-ui-bundle package's files, served here: no CDN, since the
    server may have no internet and a page must not load code from elsewhere."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None
    if swagger_ui_path is not None and Path(swagger_ui_path).is_dir():
        app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url="/openapi.json",
                title="envplane API",
                swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                swagger_css_url="/docs-assets/swagger-ui.css",
                swagger_favicon_url="/docs-assets/favicon-32x32.png",
            )

        return

    @app.get("/docs", include_in_schema=False)
    def routes_page() -> HTMLResponse:  # no local Swagger UI: a plain list of the routes
        rows = "".join(
            f"<li><code>{' '.join(sorted(getattr(r, 'methods', [])))} {r.path}</code></li>"  # type: ignore[attr-defined]
            for r in app.routes
            if getattr(r, "include_in_schema", False)
        )
        return HTMLResponse(f"<h1>envplane API</h1><p>/openapi.json</p><ul>{rows}</ul>")


def create_app(
    matrix: str | os.PathLike[str] | None = None,
    *,
    settings: Settings | None = None,
    workers: int = 2,
    tls: bool = False,
    throttle_base: float = 1.0,
    routers: Sequence[APIRouter] = (),
    static: dict[str, Path] | None = None,
) -> FastAPI:
    settings = settings or resolve(matrix)
    settings.home.mkdir(parents=True, exist_ok=True)
    store = StateStore.open(settings.database_url, settings.home)  # migrated here, once
    metrics = Metrics()
    server = ServerState(
        settings=settings,
        store=store,
        jobs=Jobs(workers, metrics),
        sessions=Sessions(),
        throttle=Throttle(base=throttle_base),
        metrics=metrics,
        tls=tls,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        server.jobs.shutdown()  # running operations finish: a killed one would need resume
        store.close()

    app = FastAPI(
        title="envplane",
        version=__version__,
        description="Environments, operations, data, delivery and previews over the service "
        "layer. Authenticate with 'Authorization: Bearer TOKEN' (`envplane token create`) "
        "or a session (POST /session). Errors are application/problem+json.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=PROBLEM_RESPONSES,
    )
    app.state.envplane = server
    problems.install(app)
    _docs(app)

    from envplane.api import (
        routes_data,
        routes_delivery,
        routes_environments,
        routes_misc,
        routes_operations,
        routes_previews,
    )

    for module in (
        routes_misc,
        routes_environments,
        routes_operations,
        routes_data,
        routes_delivery,
        routes_previews,
    ):
        app.include_router(module.router)
    for extra in routers:
        app.include_router(extra)
    for prefix, directory in (static or {}).items():
        app.mount(prefix, StaticFiles(directory=str(directory), html=True), name=prefix.strip("/"))

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        began = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, template, str(response.status_code)).inc()
        metrics.request_seconds.labels(template).observe(time.perf_counter() - began)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app
