"""The web dashboard: server-rendered pages (Jinja2, autoescaped) over the same service layer
and routes as the REST API, mounted into the same app so that it shares the sessions, the
CSRF rule, the jobs and the access rules (docs/api.md, "Dashboard").

No framework and nothing fetched from elsewhere: one small script and one stylesheet served
from `static/`. Every page works without the script (forms post, the filter is a GET form);
the script adds the live status of the environments list and the progress stream of an
operation (EventSource on `GET /operations/{id}/events`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

STATIC = Path(__file__).parent / "static"
TEMPLATES = Path(__file__).parent / "templates"


def mount() -> dict[str, Any]:
    """What `create_app` takes to serve the dashboard: `create_app(..., **mount())`."""
    from envplane.api.dashboard.actions import router as actions
    from envplane.api.dashboard.pages import router as pages

    return {"routers": [pages, actions], "static": {"/ui/static": STATIC}}
