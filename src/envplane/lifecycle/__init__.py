"""Library functions behind every command; the CLI and the API are thin layers over these."""

from envplane.lifecycle.apply import Outcome, create, plan_environment, resume, update
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
    "resume",
    "update",
]
