"""Read-only reports on a local environment: endpoints, service readiness, leftovers."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from envplane.render.model import DesiredEnvironment, Resource
from envplane.targets.base import Endpoint, ServiceStatus
from envplane.targets.local import procs, runas, supd
from envplane.targets.local.envctx import LocalEnv
from envplane.targets.local.kinds import service


def _by_kind(desired: DesiredEnvironment, kind: str) -> list[Resource]:
    return [r for r in desired.resources if r.kind == kind]


def endpoints(env: LocalEnv, desired: DesiredEnvironment) -> list[Endpoint]:
    found: list[Endpoint] = []
    for res in _by_kind(desired, "proxy"):
        base = f"http://127.0.0.1:{res.spec['port']}"
        found.append(Endpoint("frontend", f"{base}/"))
        api = _api_path(desired)
        if api is not None:
            found.append(Endpoint("api", f"{base}{api}"))
    for res in _by_kind(desired, "monitoring"):
        found.append(Endpoint("prometheus", f"http://127.0.0.1:{res.spec['port']}/"))
    for res in _by_kind(desired, "postgres"):
        spec = res.spec
        where = f"127.0.0.1:{spec['port']}/{spec['database']}"
        password = quote(env.ctx.secret(spec["password_secret"]), safe="")
        found.append(
            Endpoint(
                "postgres",
                f"postgresql://{spec['user']}:***@{where}",
                f"postgresql://{spec['user']}:{password}@{where}",
            )
        )
    for res in _by_kind(desired, "redis"):
        spec = res.spec
        password = quote(env.ctx.secret(spec["password_secret"]), safe="")
        found.append(
            Endpoint(
                "redis",
                f"redis://:***@127.0.0.1:{spec['port']}/0",
                f"redis://:{password}@127.0.0.1:{spec['port']}/0",
            )
        )
    if _by_kind(desired, "storage"):
        found.append(Endpoint("storage", f"file://{env.layout.storage}"))
    return found


def _api_path(desired: DesiredEnvironment) -> str | None:
    """A path under nginx's /api/ that answers: the backend's health path there (nginx
    passes /api/X to the backend's /X). The backend is the service named "backend", else the
    first one; without services nothing is behind /api/, and no endpoint is named for it."""
    found = _by_kind(desired, "service")
    if not found:
        return None
    backend = next((r for r in found if r.name == "backend"), found[0])
    return "/api" + str(backend.spec.get("health_path") or "/health")


def services(env: LocalEnv, desired: DesiredEnvironment) -> list[ServiceStatus]:
    statuses: list[ServiceStatus] = []
    up = supd.answering(env.layout)
    for res in _by_kind(desired, "service"):
        svc = service.ServiceSpec(res)
        ready = sum(1 for _r, ok, _d in service.replica_states(env, svc) if ok) if up else 0
        statuses.append(ServiceStatus(svc.name, ready, svc.replicas))
    return statuses


def leftovers(env: LocalEnv, recorded_ports: Mapping[str, int]) -> list[str]:
    layout = env.layout
    lines: list[str] = []
    pid = supd.daemon_pid(layout)
    seen: set[int] = set()
    if pid is not None:
        lines.append(f"supervisord still running: pid {pid} (config {layout.supervisord_conf})")
        seen.add(pid)
    for proc in procs.processes_inside(layout.env_dir):
        if proc.pid not in seen:
            seen.add(proc.pid)
            lines.append(f"process still running inside {layout.env_dir}: {proc.describe()}")
    user = runas.environment_user(env.ctx.name, layout.env_dir)
    if user is not None:
        for pid in procs.processes_of_uid(user.uid):
            info = procs.proc_info(pid)
            if pid not in seen and info is not None:
                lines.append(f"process still running as {user.name}: {info.describe()}")
    for key, port in sorted(recorded_ports.items()):
        if procs.port_accepts(port):
            owner = procs.port_owner(port)
            who = f" by {owner.describe()}" if owner else ""
            lines.append(f"port {port} ({key}) still accepts connections on 127.0.0.1{who}")
    if layout.env_dir.exists():
        lines.append(f"directory still exists: {layout.env_dir}")
    lines += runas.environment_user_leftovers(env.ctx.name, layout.env_dir)
    return lines
