"""An environment's secrets as the front doors see them: set one (the value comes from the
caller, never from an argument list, and is never returned), list them (names only).

A service reads a secret as `KEY: {secret: NAME}` in its env (matrix). envplane generates NAME
once, at the create or update that first needs it, unless it was set here first; it is kept
encrypted in the state store, and only the service's 0600 launch spec holds it in clear. Set
again, the running service gets it at the next `envplane update ENV` (which restarts it)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from envplane.data.masking import SALT_SECRET
from envplane.desired import matrix_for
from envplane.errors import BadInput
from envplane.lifecycle.apply import ACTIVE
from envplane.matrix import Matrix
from envplane.matrix.models import SecretRef
from envplane.names import check_env_name, check_ident
from envplane.render.cloud.helm import GRAFANA_PASSWORD
from envplane.render.local import POSTGRES_SECRET, REDIS_SECRET
from envplane.workspace import Workspace

MAX_VALUE_BYTES = 64 * 1024
# envplane's own secrets: the servers' configuration (a PostgreSQL role, redis.conf, Grafana,
# masked copies' hashes) holds them, so they are generated, never set by hand. A service may
# still read one (`{secret: postgres-password}`).
MANAGED: Mapping[str, str] = {
    POSTGRES_SECRET: "the PostgreSQL app role's password",
    REDIS_SECRET: "the Redis password",
    SALT_SECRET: "the salt of masked copies' hashes",
    GRAFANA_PASSWORD: "the Grafana admin password (cloud)",
}


class SecretView(BaseModel):
    """One secret of an environment, as `envplane secret list -o json` shows it: never a value."""

    model_config = ConfigDict(frozen=True)

    name: str
    stored: bool  # False: generated at the next create or update that needs it
    used_by: list[str]  # "service.KEY" for each env value that reads it
    managed: bool  # envplane's own (generated, never set by hand)


class SecretSet(BaseModel):
    model_config = ConfigDict(frozen=True)

    environment: str
    name: str
    replaced: bool  # a value was stored before
    used_by: list[str]
    environment_exists: bool

    def text(self) -> str:
        done = f"secret {self.name} of {self.environment} {'replaced' if self.replaced else 'set'}"
        services = sorted({use.split(".", 1)[0] for use in self.used_by})
        if not self.environment_exists:
            return f"{done}; `envplane create {self.environment}` uses it"
        if not services:
            return f"{done}; no service of {self.environment} reads it yet"
        return (
            f"{done}; `envplane update {self.environment}` restarts the service(s) that read "
            f"it: {', '.join(services)}"
        )


def _matrix(ws: Workspace, env: str) -> Matrix | None:
    """The matrix that defines `env`, or None when only the store knows it (removed from the
    matrix, never derived); an environment neither knows is UnknownEnvironment."""
    matrix = matrix_for(ws, env)
    if env in matrix.environments:
        return matrix
    if ws.store.get_environment(env) is not None:
        return None
    matrix.environment(env)  # raises UnknownEnvironment, with a suggestion
    return None


def references(matrix: Matrix | None, env: str) -> dict[str, list[str]]:
    """Secret name -> the env values that read it ("service.KEY"), per the matrix."""
    refs: dict[str, list[str]] = {}
    if matrix is None:
        return refs
    for service, spec in matrix.services_for(env).items():
        for key, value in spec.env.items():
            if isinstance(value, SecretRef):
                refs.setdefault(value.secret, []).append(f"{service}.{key}")
    return refs


def list_secrets(ws: Workspace, env: str) -> list[SecretView]:
    """The secrets `env` has in the store or reads in the matrix, names only."""
    check_env_name(env)
    try:
        matrix = _matrix(ws, env)
    except BadInput:
        if ws.store.get_environment(env) is None and not ws.store.secret_names(env):
            raise
        matrix = None  # a matrix that does not load: what the store has
    refs = references(matrix, env)
    stored = set(ws.store.secret_names(env))
    return [
        SecretView(
            name=name,
            stored=name in stored,
            used_by=refs.get(name, []),
            managed=name in MANAGED,
        )
        for name in sorted(stored | set(refs))
    ]


def check_value(value: str) -> str:
    """A secret's value as an environment variable can carry it."""
    if not value:
        raise BadInput(
            "the secret's value is empty", hint="pipe the value to `envplane secret set` on stdin"
        )
    if "\0" in value:
        raise BadInput("a secret's value cannot hold a NUL character (no environment variable can)")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise BadInput(f"a secret's value is at most {MAX_VALUE_BYTES // 1024} KiB")
    return value


def set_secret(ws: Workspace, env: str, name: str, value: str) -> SecretSet:
    """Store `value` as `env`'s secret `name` (encrypted), before or after the environment is
    created. Refused for envplane's own secrets and for a name `env` neither reads nor has.
    The audit trail records who set which name; nothing records the value."""
    check_env_name(env)
    check_ident(name, what="secret name")
    check_value(value)
    if name in MANAGED:
        raise BadInput(
            f"{name} is envplane's own secret ({MANAGED[name]}): it is generated, and the "
            "servers are configured with it, so it is not set by hand",
            hint="give the service a secret of its own: `KEY: {secret: NAME}` in its env",
        )
    matrix = _matrix(ws, env)
    refs = references(matrix, env)
    stored = set(ws.store.secret_names(env))
    if name not in refs and name not in stored:
        known = ", ".join(sorted(n for n in refs if n not in MANAGED)) or "none"
        raise BadInput(
            f"no service of environment {env!r} reads a secret {name!r} (its secrets: {known})",
            hint=f"reference it in a service's env in the matrix first: `KEY: {{secret: {name}}}`",
        )
    ws.store.put_secret(env, name, value)
    ws.store.audit(env, "secret-set", f"secret {name} set (value not recorded)")
    record = ws.store.get_environment(env)
    return SecretSet(
        environment=env,
        name=name,
        replaced=name in stored,
        used_by=refs.get(name, []),
        environment_exists=record is not None and record.status in ACTIVE,
    )
