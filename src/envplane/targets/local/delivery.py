"""LocalDelivery: what envplane.delivery needs of this machine to move traffic between versions.

Each replica of a service is a supervised program on its own port, on one of two colors (two
recorded port sets); nginx's upstreams carry the traffic. A route counts as done only when
nginx's old workers have exited (proxy.py): until then they still answer with the old config.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from envplane.errors import OperationFailed
from envplane.render.model import Resource
from envplane.targets.base import EnvContext
from envplane.targets.local import nginxconf, supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.failures import plain_errors
from envplane.targets.local.kinds import daemon, proxy, service
from envplane.targets.local.runas import RunUser

MIGRATE_TIMEOUT = 600.0


class LocalDelivery:
    def _env(self, ctx: EnvContext) -> LocalEnv:
        env = LocalEnv.of(ctx)
        if not supd.answering(env.layout):
            # After a reboot or a killed supervisord, programs need their daemon back first.
            daemon.apply(env, "create", Resource("supervisor", "supervisor", {}))
        return env

    def start_replica(self, ctx: EnvContext, resource: Resource, replica: int) -> None:
        with plain_errors(resource, "start"):
            env = self._env(ctx)
            service.start_replica(env, service.ServiceSpec(resource), replica)

    def stop_replica(self, ctx: EnvContext, name: str, color: str, replica: int) -> None:
        env = self._env(ctx)
        service.stop_replica(env, name, color, replica)
        env.ctx.progress(f"service {name}: {color} replica {replica} stopped")

    def replicas(self, ctx: EnvContext, name: str, color: str) -> list[int]:
        """The replicas of `name` configured on `color` (running or not)."""
        return service.existing_replicas(LocalEnv.of(ctx), name, color)

    def probe(
        self, ctx: EnvContext, resource: Resource, replica: int, path: str
    ) -> tuple[bool, str]:
        """GET `path` on one replica directly (its own port: the new color before it gets
        traffic is checked replica by replica, not through whichever one nginx picks)."""
        spec = service.ServiceSpec(resource)
        return service.health(spec.ports[replica], path)

    def route(self, ctx: EnvContext, resource: Resource) -> float:
        """Apply the proxy's spec (its upstream servers and weights); seconds from the reload
        until every old nginx worker had exited, i.e. until the switch is complete."""
        with plain_errors(resource, "route"):
            env = self._env(ctx)
            started = time.monotonic()
            proxy.apply(env, "update", resource)
            return time.monotonic() - started

    def access_log(self, ctx: EnvContext) -> Path:
        return nginxconf.access_log(LocalEnv.of(ctx).layout)

    def migrate(self, ctx: EnvContext, resource: Resource) -> str:
        """Run the service's `migrate` command once, as the environment's user, with the new
        version's environment (its database credentials included); the output's tail."""
        env = self._env(ctx)
        spec = service.ServiceSpec(resource)
        program = spec.program(env, 0)
        values = {**supd.clean_env(env.layout), **program.env}
        values.pop("PORT", None)  # a migration listens nowhere
        return _run_once(env.user, spec.migrate, spec.cwd, values, f"migration of {spec.name}")


def _run_once(user: RunUser, argv: list[str], cwd: Path, values: dict[str, str], what: str) -> str:
    try:
        proc = subprocess.run(
            RunUser.tied(argv),
            cwd=cwd,
            env=values,
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT,
            check=False,
            **user.popen_kwargs(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OperationFailed(f"{what} did not run: {exc}") from None
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
    if proc.returncode != 0:
        raise OperationFailed(
            f"{what} failed (exit {proc.returncode}):\n{tail}",
            hint="nothing took traffic yet: fix the migration and deploy again",
        )
    return tail or f"{what}: exit 0 ({os.path.basename(argv[0])})"
