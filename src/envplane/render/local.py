"""Desired state of an environment on the local target: real processes on one machine."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from envplane.matrix import Matrix
from envplane.matrix.models import SecretRef, Service
from envplane.render import templates
from envplane.render.model import COLORS, DesiredEnvironment, Resource, Running
from envplane.render.notes import local_notes
from envplane.render.variables import base_variables, env_var_name, is_on, project_root

POSTGRES_SECRET = "postgres-password"  # noqa: S105 - a secret's name, not its value
REDIS_SECRET = "redis-password"  # noqa: S105 - a secret's name
APP_DB_USER = "app"

DEFAULT_SERVER_BLOCK = """server {
    listen {{LISTEN}};
    root {{STATIC_ROOT}};
    location /health { return 200 "healthy\\n"; }
    location / { try_files $uri $uri/ =404; }
}
"""


def port_keys(matrix: Matrix, env: str) -> list[str]:
    """Every port the environment needs, as stable allocation keys."""
    environment = matrix.environment(env)
    keys = ["proxy"]
    if environment.databases and environment.databases.primary:
        keys.append("postgres")
    if environment.databases and environment.databases.cache:
        keys.append("redis")
    if environment.monitoring and is_on(environment.monitoring.prometheus):
        keys.append("prometheus")
    for name, service in matrix.services_for(env).items():
        for color in COLORS:
            keys.extend(replica_port_key(name, color, i) for i in range(service.replicas))
    return keys


def upstream_name(service: str) -> str:
    """The nginx upstream of a service, as templates name it (`proxy_pass http://NAME/`)."""
    return f"{service.replace('-', '_')}_service"


def replica_port_key(service: str, color: str, replica: int) -> str:
    """Blue replicas keep the keys environments had before releases existed."""
    if color == "blue":
        return f"service/{service}/{replica}"
    return f"service/{service}/{color}/{replica}"


def version_of(service: Service, version: str) -> tuple[list[str], dict[str, str | SecretRef]]:
    """The command and env of one version of a service: the service's, with the version's
    own (`versions:`) over them, `{version}` standing for its name in both."""
    variant = service.versions.get(version)
    command = list(variant.command) if variant and variant.command else list(service.command)
    env: dict[str, str | SecretRef] = {**service.env, **(variant.env if variant else {})}
    command = [part.replace("{version}", version) for part in command]
    env = {k: v.replace("{version}", version) if isinstance(v, str) else v for k, v in env.items()}
    return command, env


def migration_of(service: Service, version: str) -> list[str]:
    """The migration a deploy of `version` runs before it takes traffic: the version's own
    (`versions: {V: {migrate: [...]}}`), else the service's; [] for none."""
    variant = service.versions.get(version)
    argv = variant.migrate if variant and variant.migrate is not None else service.migrate
    return [part.replace("{version}", version) for part in argv]


def local_variables(
    matrix: Matrix, env: str, env_dir: Path, ports: Mapping[str, int]
) -> dict[str, Any]:
    variables = base_variables(matrix, env)
    proxy = ports["proxy"]
    variables.update(
        POSTGRES_HOST="127.0.0.1",
        POSTGRES_PORT=ports.get("postgres", 0),
        POSTGRES_SSL="false",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=ports.get("redis", 0),
        LISTEN=f"127.0.0.1:{proxy}",
        STATIC_ROOT=str(env_dir / "frontend"),
        PUBLIC_URL=f"http://127.0.0.1:{proxy}",
        PUBLIC_WS_URL=f"ws://127.0.0.1:{proxy}",
    )
    for name in matrix.services_for(env):
        variables[f"{env_var_name(name)}_URL"] = f"http://{name.replace('-', '_')}_service"
    return variables


def desired_local(
    matrix: Matrix,
    env: str,
    *,
    env_dir: Path,
    ports: Mapping[str, int],
    template: str | None = None,
    running: Mapping[str, Running] | None = None,
) -> DesiredEnvironment:
    """`running`: the version and color each service runs (a release deployed); a service it
    does not name runs its initial version on blue."""
    environment = matrix.environment(env)
    root = project_root(matrix)
    variables = local_variables(matrix, env, env_dir, ports)
    chosen = template or environment.template
    if (
        template is None
        and chosen == env
        and not templates.template_dir(matrix.templates_dir, env).is_dir()
    ):
        files: list[Path] = []  # only the default (the env's own name) may be absent: no config
    else:
        files = templates.template_files(matrix.templates_dir, chosen)
    config_maps = {cm.name: cm for cm in templates.render_config_maps(files, variables)}

    resources: list[Resource] = [Resource("supervisor", "supervisor", {})]
    backing: list[str] = []
    service_env: dict[str, str] = {
        "ENVIRONMENT_NAME": env,
    }
    secret_env: dict[str, str] = {}
    secrets: list[str] = []
    primary = environment.databases.primary if environment.databases else None
    cache = environment.databases.cache if environment.databases else None
    if primary is not None:
        spec = {
            "version": str(primary.version),
            "port": ports["postgres"],
            "database": variables["POSTGRES_DB"],
            "user": APP_DB_USER,
            "password_secret": POSTGRES_SECRET,
        }
        resources.append(Resource("postgres", "postgres", spec, ("supervisor/supervisor",)))
        backing.append("postgres/postgres")
        secrets.append(POSTGRES_SECRET)
        service_env.update(
            DATABASE_HOST="127.0.0.1",
            DATABASE_PORT=str(ports["postgres"]),
            DATABASE_USER=APP_DB_USER,
            DATABASE_NAME=str(variables["POSTGRES_DB"]),
        )
        secret_env["DATABASE_PASSWORD"] = POSTGRES_SECRET
    if cache is not None:
        spec = {"port": ports["redis"], "password_secret": REDIS_SECRET}
        resources.append(Resource("redis", "redis", spec, ("supervisor/supervisor",)))
        backing.append("redis/redis")
        secrets.append(REDIS_SECRET)
        service_env.update(REDIS_HOST="127.0.0.1", REDIS_PORT=str(ports["redis"]))
        secret_env["REDIS_PASSWORD"] = REDIS_SECRET
    if environment.storage is not None:
        storage_spec = {"versioning": is_on(environment.storage.versioning)}
        resources.append(Resource("storage", "storage", storage_spec, ("supervisor/supervisor",)))
        # Services may use the bucket from their first request: it is there (with its
        # objects, under a clone) before they start.
        backing.append("storage/storage")

    config_files = {
        f"{cm.name}/{key}": value for cm in config_maps.values() for key, value in cm.data.items()
    }
    resources.append(
        Resource("config", "config", {"files": config_files}, ("supervisor/supervisor",))
    )

    app_config = dict(config_maps["app-config"].data) if "app-config" in config_maps else {}
    service_keys: list[str] = []
    upstreams: dict[str, list[dict[str, int]]] = {}
    jobs: list[dict[str, Any]] = []
    for name, service in matrix.services_for(env).items():
        now = (running or {}).get(name) or Running(service.initial_version())
        replica_ports = [
            ports[replica_port_key(name, now.color, i)] for i in range(service.replicas)
        ]
        argv, version_env = version_of(service, now.version)
        command = [sys.executable if part == "{python}" else part for part in argv]
        # `{secret: NAME}` values are references (secret_env: variable -> secret name), which
        # the driver resolves into the program's 0600 launch spec only; NAME is generated
        # once unless set (`envplane secret set`). A spec never holds a secret's value.
        refs = {k: v.secret for k, v in version_env.items() if isinstance(v, SecretRef)}
        plain = {k: v for k, v in version_env.items() if isinstance(v, str)}
        secrets += [n for n in sorted(set(refs.values())) if n not in secrets]
        spec = {
            "command": command,
            "cwd": str(root),
            "replicas": service.replicas,
            "ports": replica_ports,
            "color": now.color,
            "version": now.version,
            "health_path": service.health_path,
            "smoke_path": service.smoke_path,
            "migrate": [
                sys.executable if p == "{python}" else p for p in migration_of(service, now.version)
            ],
            "env": {
                k: v
                for k, v in {**app_config, **service_env, "VERSION": now.version, **plain}.items()
                if k not in refs
            },
            "secret_env": {**secret_env, **refs},
        }
        depends = ("config/config", *backing)
        resources.append(Resource("service", name, spec, depends))
        service_keys.append(f"service/{name}")
        upstreams[upstream_name(name)] = [{"port": p, "weight": 1} for p in replica_ports]
        targets = [f"127.0.0.1:{p}" for p in replica_ports]
        jobs.append({"name": name, "metrics_path": service.metrics_path, "targets": targets})

    frontend = config_maps.get("frontend-config")
    server_conf = frontend.data.get("nginx.conf") if frontend else None
    if server_conf is None:
        server_conf = templates.render_text(DEFAULT_SERVER_BLOCK, variables, filename="<default>")
    static_files = {
        k: v for k, v in (frontend.data.items() if frontend else []) if k != "nginx.conf"
    }
    static_files.update(_static_dir_files(root / "frontend"))
    proxy_spec = {
        "port": ports["proxy"],
        "server_conf": server_conf,
        "upstreams": upstreams,
        "static_files": static_files,
    }
    resources.append(
        Resource("proxy", "nginx", proxy_spec, tuple(service_keys) or ("config/config",))
    )
    if "prometheus" in ports:
        monitoring_spec = {"port": ports["prometheus"], "scrape_interval": "5s", "jobs": jobs}
        resources.append(Resource("monitoring", "prometheus", monitoring_spec, tuple(service_keys)))

    return DesiredEnvironment(
        name=env,
        project=matrix.project,
        target="local",
        resources=tuple(resources),
        notes=tuple(local_notes(matrix, env)),
        secrets=tuple(secrets),
        ports=tuple(port_keys(matrix, env)),
    )


def _static_dir_files(folder: Path) -> dict[str, str]:
    """Small text files of the project's static frontend, served by nginx beside env.js."""
    if not folder.is_dir():
        return {}
    return {
        p.name: p.read_text(encoding="utf-8")
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in (".html", ".js", ".css", ".txt", ".json")
    }
