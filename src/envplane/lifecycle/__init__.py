"""The environment lifecycle: create, update, destroy and their resume, info, list, history.

Importing the package registers its operation kinds (create, update, destroy) with the
engine's registry; the service layer is what front doors call.
"""

from envplane.engine.outcome import Outcome
from envplane.lifecycle.apply import create, plan_environment, update
from envplane.lifecycle.destroy import destroy
from envplane.lifecycle.inspect import EnvironmentInfo, history, info, list_environments

__all__ = [
    "EnvironmentInfo",
    "Outcome",
    "create",
    "destroy",
    "history",
    "info",
    "list_environments",
    "plan_environment",
    "update",
]
