"""The service layer: what every front door (the CLI, the coming REST API) calls, and nothing
above it holds business logic.

Requests are plain arguments; results are models whose JSON is the `-o json` output
(`service.results`); progress goes to the Workspace's event sink.

Each name is imported on first use (PEP 562), so a command loads only the capability it runs
(`envplane plan` never imports the data operations): start-up time is most of a short
command's time. `resume` imports every capability, so each has registered its operation kinds
with the engine's registry before an operation is read back.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envplane.data import clone, sync
    from envplane.lifecycle import create, destroy, history, info, list_environments, update
    from envplane.service.backups import backup, list_backups, prune, restore
    from envplane.service.operations import resume
    from envplane.service.plans import SavedPlan, apply_plan, plan, save_plan
    from envplane.service.rendering import render_files
    from envplane.validate import run_validation as validate

# name -> (module, attribute in it)
_EXPORTS: dict[str, tuple[str, str]] = {
    "clone": ("envplane.data", "clone"),
    "sync": ("envplane.data", "sync"),
    "create": ("envplane.lifecycle", "create"),
    "destroy": ("envplane.lifecycle", "destroy"),
    "history": ("envplane.lifecycle", "history"),
    "info": ("envplane.lifecycle", "info"),
    "list_environments": ("envplane.lifecycle", "list_environments"),
    "update": ("envplane.lifecycle", "update"),
    "backup": ("envplane.service.backups", "backup"),
    "list_backups": ("envplane.service.backups", "list_backups"),
    "prune": ("envplane.service.backups", "prune"),
    "restore": ("envplane.service.backups", "restore"),
    "resume": ("envplane.service.operations", "resume"),
    "SavedPlan": ("envplane.service.plans", "SavedPlan"),
    "apply_plan": ("envplane.service.plans", "apply_plan"),
    "plan": ("envplane.service.plans", "plan"),
    "save_plan": ("envplane.service.plans", "save_plan"),
    "render_files": ("envplane.service.rendering", "render_files"),
    "validate": ("envplane.validate", "run_validation"),
}

__all__ = [
    "SavedPlan",
    "apply_plan",
    "backup",
    "clone",
    "create",
    "destroy",
    "history",
    "info",
    "list_backups",
    "list_environments",
    "plan",
    "prune",
    "render_files",
    "restore",
    "resume",
    "save_plan",
    "sync",
    "update",
    "validate",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # the next access is a plain lookup
    return value
