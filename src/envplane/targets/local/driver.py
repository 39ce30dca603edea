"""LocalTarget: a real environment on this machine, one supervisord per environment.

Heavy libraries (psycopg, redis, supervisor) are imported by the kind handlers when used."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType

from envplane.errors import BadInput
from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import (
    Action,
    DriftItem,
    Endpoint,
    EnvContext,
    FrontDoor,
    Observed,
    Problem,
    ServiceStatus,
    Usage,
)
from envplane.targets.local import (
    drift,
    nginxconf,
    pgcluster,
    programs,
    report,
    requirements,
    supd,
    teardown,
    usage,
    wake,
)
from envplane.targets.local.data import seed_resource
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.failures import plain_errors
from envplane.targets.local.kinds import daemon, files, monitoring, postgres, proxy, redis, service
from envplane.targets.local.specs import spec_port

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


def _one_port(res: Resource) -> list[int]:
    return [spec_port(res.spec, "port", res.key)]


# The 127.0.0.1 ports each kind's programs listen on.
PORTS: dict[str, Callable[[Resource], list[int]]] = {
    "postgres": _one_port,
    "redis": _one_port,
    "proxy": _one_port,
    "monitoring": _one_port,
    "service": lambda res: service.ServiceSpec(res).ports,
}


def _ports(res: Resource) -> list[int]:
    ports = PORTS.get(res.kind)
    return ports(res) if ports is not None else []


# The programs each kind runs, found (or ToolMissing) before anything is started.
REQUIRED_PROGRAMS: dict[str, Callable[[], object]] = {
    "postgres": pgcluster.bindir,
    "redis": redis.server_binary,
    "proxy": nginxconf.binary,
    "monitoring": monitoring.binary,
}


class LocalTarget:
    name = "local"

    def check(self, desired: DesiredEnvironment, env_dir: Path) -> list[Problem]:
        return requirements.check(desired, env_dir)

    def preflight(self, desired: DesiredEnvironment) -> None:
        for kind in sorted({r.kind for r in desired.resources} & REQUIRED_PROGRAMS.keys()):
            REQUIRED_PROGRAMS[kind]()

    def observe(self, ctx: EnvContext, resource: Resource) -> Observed:
        env = LocalEnv.of(ctx)
        observe, _apply, _delete = _handlers(resource)
        with plain_errors(resource, "observing"):
            # Someone else listening on one of the resource's ports is drift whatever the
            # program's state: it would answer the probes, and the program cannot start.
            held = programs.held_ports(env, _ports(resource))
            if resource.kind != "supervisor" and not supd.answering(env.layout):
                return Observed(False, False, "; ".join(["supervisord is not running", *held]))
            seen = observe(env, resource)
            if seen.healthy and (found := drift.repairable(env, resource)):
                # Changed behind envplane's back (ALTER SYSTEM, CONFIG SET): `update` puts it back.
                what = "; ".join(f"{d.field} is {d.actual}, not {d.expected}" for d in found)
                seen = Observed(True, False, f"changed behind envplane's back: {what}", seen.info)
            held = [h for h in held if h not in seen.detail]
            if not held:
                return seen
            return Observed(seen.exists, False, "; ".join(filter(None, [*held, seen.detail])))

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

    def platform(self, ctx: EnvContext, desired: DesiredEnvironment) -> str | None:
        return None  # this machine: `services` and `endpoints` say what runs

    def drift(self, ctx: EnvContext, desired: DesiredEnvironment) -> list[DriftItem]:
        with plain_errors(Resource("supervisor", "supervisor", {}), "checking drift of"):
            return drift.local_drift(LocalEnv.of(ctx), desired)

    def usage(self, ctx: EnvContext) -> Usage:
        return usage.measure(LocalEnv.of(ctx).layout)

    # WakeTarget: sleep and wake (targets/local/wake.py).
    def front_door(self, ctx: EnvContext) -> FrontDoor:
        return wake.front_door(LocalEnv.of(ctx))

    def stop_all(self, ctx: EnvContext) -> list[str]:
        with plain_errors(Resource("supervisor", "supervisor", {}), "stopping the programs of"):
            return wake.stop_all(LocalEnv.of(ctx))

    def start_all(
        self, ctx: EnvContext, desired: DesiredEnvironment, handover: Callable[[], None]
    ) -> list[str]:
        with plain_errors(Resource("supervisor", "supervisor", {}), "starting the programs of"):
            return wake.start_all(
                LocalEnv.of(ctx), desired, handover, lambda r: self.observe(ctx, r), _ports
            )
