"""One error tree. Every error the user can cause or fix carries an exit code and a hint.

Exit codes (scripts rely on them): 0 done, 1 operation failed, 2 bad input or usage,
3 blocked (lock held, approval pending, policy refused).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_BLOCKED = 3


class EnvplaneError(Exception):
    """Root of every expected error. `hint` says what the user should do next."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class BadInput(EnvplaneError):
    """The user's input (arguments, files) is wrong; nothing was changed."""

    exit_code = EXIT_BAD_INPUT


class MatrixError(BadInput):
    """A problem in the matrix or a template, located by file, line and key path."""

    def __init__(
        self,
        message: str,
        *,
        file: str,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = file if line is None else f"{file}:{line}"
        located = f"{where}: {key}: {message}" if key else f"{where}: {message}"
        super().__init__(located, hint=hint)
        self.file = file
        self.line = line
        self.key = key
        self.detail = message


class UnknownEnvironment(BadInput):
    pass


class InvalidName(BadInput):
    pass


class UnknownTarget(BadInput):
    """A target name no registered driver has (`targets.registry.spec` raises it)."""

    def __init__(self, name: str, known: tuple[str, ...]) -> None:
        super().__init__(f"unknown target {name!r}; choose one of: {', '.join(known)}")
        self.target = name
        self.known = known


class Blocked(EnvplaneError):
    """The operation may not run now: a lock is held, approval is missing, policy refuses."""

    exit_code = EXIT_BLOCKED


class LockHeld(Blocked):
    def __init__(self, environment: str, holder: str, *, reading: bool = False) -> None:
        doing = "is being read by" if reading else "is locked by"
        super().__init__(
            f"environment {environment!r} {doing} {holder}",
            hint="wait for that operation to finish, or `envplane resume` it if it died",
        )
        self.environment = environment
        self.holder = holder


class PolicyRefused(Blocked):
    """An environment breaks a policy in force (matrix/policies.py): nothing was changed.
    `violations`: one plain dict per violation (environment, rule, key, requires, actual,
    file, line), for the front doors that show them as data."""

    def __init__(
        self, message: str, *, hint: str | None = None, violations: list[dict[str, object]]
    ) -> None:
        super().__init__(message, hint=hint)
        self.violations = violations


class OperationFailed(EnvplaneError):
    """An operation ran and failed; its journal says where. It may be resumable."""

    def __init__(self, message: str, *, operation_id: str | None = None, hint: str | None = None):
        if operation_id and hint is None:
            hint = f"fix the cause, then run `envplane resume {operation_id}`"
        super().__init__(message, hint=hint)
        self.operation_id = operation_id


class TransientError(EnvplaneError):
    """A failure worth retrying (a port raced away, a server still starting)."""


class ToolMissing(EnvplaneError):
    """An external program the target needs is not installed."""
