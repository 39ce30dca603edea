"""LocalTarget: a real environment on this machine, one supervisord per environment.

Heavy libraries (psycopg, redis, supervisor) are imported by the kind handlers when used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import ModuleType

from envplane.errors import BadInput
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import Action, Endpoint, EnvContext, Observed, ServiceStatus
from envplane.targets.local import nginxconf, pgcluster, report, supd, teardown
from envplane.targets.local.data import seed_resource
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.failures import plain_errors
from envplane.targets.local.kinds import daemon, files, monitoring, postgres, proxy, redis, service

Observe = Callable[[LocalEnv, Resource], Observed]
Apply = Callable[[LocalEnv, Action, Resource], None]
Delete = Callable[[LocalEnv, Resource], None]


def _kind(module: ModuleType) -> tuple[Observe, Apply, Delete]:
    return module.observe, module.apply, module.delete


HANDLERS: dict[str, tuple[Observe, Apply, Delete]] = {
    "supervisor": _kind(daemon),
    "postgres": _kind(postgres),
    "redis": _kind(redis),
    "storage": (files.storage_observe, files.storage_apply, files.storage_delete),
    "config": (files.config_observe, files.config_apply, files.config_delete),
    "service": _kind(service),
    "proxy": _kind(proxy),
    "monitoring": _kind(monitoring),
}


def _handlers(res: Resource) -> tuple[Observe, Apply, Delete]:
    try:
        return HANDLERS[res.kind]
    except KeyError:
        raise BadInput(
            f"resource {res.key}: the local target has no resource kind {res.kind!r}",
            hint=f"known kinds: {', '.join(sorted(HANDLERS))}",
        ) from None


# The programs each kind runs, found (or ToolMissing) before anything is started.
REQUIRED_PROGRAMS: dict[str, Callable[[], object]] = {
    "postgres": pgcluster.bindir,
    "redis": redis.server_binary,
    "proxy": nginxconf.binary,
    "monitoring": monitoring.binary,
}


class LocalTarget:
    name = "local"

    def preflight(self, desired: DesiredEnvironment) -> None:
        for kind in sorted({r.kind for r in desired.resources} & REQUIRED_PROGRAMS.keys()):
            REQUIRED_PROGRAMS[kind]()

    def observe(self, ctx: EnvContext, resource: Resource) -> Observed:
        env = LocalEnv.of(ctx)
        observe, _apply, _delete = _handlers(resource)
        if resource.kind != "supervisor" and not supd.answering(env.layout):
            return Observed(False, False, "supervisord is not running")
        with plain_errors(resource, "observing"):
            return observe(env, resource)

    def apply(self, ctx: EnvContext, action: Action, resource: Resource) -> None:
        _observe, apply, _delete = _handlers(resource)
        env = LocalEnv.of(ctx)
        seed = ctx.seeds.get(resource.kind) if action == "create" else None
        with plain_errors(resource, action):
            if resource.kind != "supervisor" and not supd.answering(env.layout):
                # After a reboot or a killed supervisord, programs need their daemon back first.
                daemon.apply(env, "create", Resource("supervisor", "supervisor", {}))
            token = seed() if seed is not None else None
            if token is not None:
                seed_resource(env, resource, token)
            apply(env, action, resource)

    def delete(self, ctx: EnvContext, resource: Resource) -> None:
        _observe, _apply, delete = _handlers(resource)
        with plain_errors(resource, "delete"):
            delete(LocalEnv.of(ctx), resource)

    def teardown(self, ctx: EnvContext) -> None:
        teardown.destroy_all(LocalEnv.of(ctx))

    def destroy_all(self, ctx: EnvContext) -> None:
        teardown.destroy_all(LocalEnv.of(ctx))

    def leftovers(self, ctx: EnvContext, recorded_ports: Mapping[str, int]) -> list[str]:
        return report.leftovers(LocalEnv.of(ctx), recorded_ports)

    def endpoints(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[Endpoint]:
        return report.endpoints(LocalEnv.of(ctx), desired)

    def services(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[ServiceStatus]:
        return report.services(LocalEnv.of(ctx), desired)
