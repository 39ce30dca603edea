"""The service layer: what every front door (the CLI, the coming REST API) calls, and nothing
above it holds business logic.

Importing it imports every capability, so each registers its operation kinds with the
engine's registry before anything is resumed. Requests are plain arguments; results are
models whose JSON is the `-o json` output; progress goes to the Workspace's event sink.
"""

from envplane.data import clone, sync
from envplane.lifecycle import create, destroy, history, info, list_environments, update
from envplane.service.backups import backup, list_backups, prune, restore
from envplane.service.operations import resume
from envplane.service.plans import SavedPlan, apply_plan, plan, save_plan
from envplane.service.rendering import render_files
from envplane.validate import run_validation as validate

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
