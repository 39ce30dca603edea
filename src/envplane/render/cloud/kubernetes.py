"""The environment's Kubernetes objects: namespace, policies, ConfigMaps, Services, Deployments.

Values only known once Terraform ran (the RDS and Redis hosts) appear as `${tf:NAME}`
placeholders; the driver fills them from `terraform output` before applying."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envplane.errors import MatrixError
from envplane.matrix import Matrix
from envplane.render import templates
from envplane.render.cloud.helm import monitoring_values
from envplane.render.cloud.names import (
    DB_USER,
    DEFAULT_FRONTEND_IMAGE,
    k8s_name,
    labels,
    placeholder,
)
from envplane.render.cloud.policies import network_policies
from envplane.render.cloud.tracks import (
    INGRESS_CLASS_VARIABLE,
    TrackObjects,
    image_for,
    track_objects,
)
from envplane.render.cloud.variables import cloud_variables
from envplane.render.cloud.workloads import (
    CONFIG_ROOT,
    Workload,
    deployment,
    disruption_budget,
    service,
)
from envplane.render.templates import ConfigMap
from envplane.render.variables import is_on, namespace

if TYPE_CHECKING:
    from envplane.matrix.models import SecretRef, Service
    from envplane.render.model import Running

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$")
NGINX_CAPABILITIES = ("CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID")


@dataclass(frozen=True)
class KubeObjects:
    namespace: str
    manifests: list[dict[str, Any]]
    workloads: list[Workload]
    secret_keys: list[str]  # keys of the app Secret the driver fills from Secrets Manager


def config_maps(matrix: Matrix, env: str, template: str | None) -> list[ConfigMap]:
    chosen = template or matrix.environment(env).template
    if (
        template is None
        and chosen == env
        and not templates.template_dir(matrix.templates_dir, env).is_dir()
    ):
        return []  # only the default (the environment's own name) may be absent
    files = templates.template_files(matrix.templates_dir, chosen)
    maps = templates.render_config_maps(files, cloud_variables(matrix, env))
    for cm in maps:
        if not DNS_SUBDOMAIN.fullmatch(cm.name):
            raise MatrixError(
                f"ConfigMap name {cm.name!r} is not a Kubernetes name",
                file=cm.source,
                key="metadata.name",
                hint="use a-z, 0-9, '-' and '.' (no '_')",
            )
    return maps


def version_env(svc: Service, version: str) -> dict[str, str | SecretRef]:
    """The service's env with its version's own (`versions:`) over it, `{version}` standing
    for the version's name, and VERSION set to it."""
    variant = svc.versions.get(version)
    env: dict[str, str | SecretRef] = {**svc.env, **(variant.env if variant else {})}
    env = {k: v.replace("{version}", version) if isinstance(v, str) else v for k, v in env.items()}
    return {"VERSION": version, **env}


def _workloads(
    matrix: Matrix, env: str, maps: list[ConfigMap], running: Mapping[str, Running] | None
) -> tuple[list[Workload], list[str]]:
    e = matrix.environment(env)
    variables = cloud_variables(matrix, env)
    primary = e.databases.primary if e.databases else None
    cache = e.databases.cache if e.databases else None
    common: dict[str, str] = {"ENVIRONMENT_NAME": env, "VERSION": str(variables["VERSION"])}
    secret_keys: list[str] = []
    if maps:
        common["ENVPLANE_CONFIG_DIR"] = CONFIG_ROOT
    if primary is not None:
        common.update(
            DATABASE_HOST=placeholder("rds_address"),
            DATABASE_PORT="5432",
            DATABASE_USER=DB_USER,
            DATABASE_NAME=str(variables["POSTGRES_DB"]),
            DATABASE_SSLMODE="require",
        )
        secret_keys.append("DATABASE_PASSWORD")
    if cache is not None:
        common.update(REDIS_HOST=placeholder("redis_address"), REDIS_PORT="6379", REDIS_TLS="true")
        secret_keys.append("REDIS_PASSWORD")
    mounts = {cm.name: f"{CONFIG_ROOT}/{cm.name}" for cm in maps}
    out: list[Workload] = []
    for name, svc in matrix.services_for(env).items():
        now = (running or {}).get(name)
        version = now.version if now is not None else svc.initial_version()
        out.append(
            Workload(
                name=k8s_name(name),
                image=image_for(str(svc.image), version),
                version=version,
                color=now.color if now is not None else "blue",
                port=svc.port,
                replicas=svc.replicas,
                health_path=svc.health_path,
                metrics_path=svc.metrics_path,
                env={**common, "PORT": str(svc.port), **version_env(svc, version)},
                secret_env=tuple(secret_keys),
                cpu=svc.cpu,
                memory=svc.memory,
                mounts=mounts,
            )
        )
    frontend = next((cm for cm in maps if cm.name == "frontend-config"), None)
    names = {w.name for w in out}
    if frontend is not None and "nginx.conf" in frontend.data and "frontend" not in names:
        files = {"/etc/nginx/conf.d/default.conf": (frontend.name, "nginx.conf")}
        files.update(
            {
                f"/usr/share/nginx/html/{key}": (frontend.name, key)
                for key in frontend.data
                if key != "nginx.conf"
            }
        )
        zones = e.networking.availability_zones if e.networking else 1
        out.append(
            Workload(
                name="frontend",
                image=str(variables.get("FRONTEND_IMAGE") or DEFAULT_FRONTEND_IMAGE),
                port=80,
                replicas=2 if zones > 1 else 1,
                health_path="/health",
                metrics_path=None,
                env={},
                public=True,
                files=files,
                capabilities=NGINX_CAPABILITIES,
            )
        )
    return out, secret_keys


def render_kubernetes(
    matrix: Matrix,
    env: str,
    template: str | None = None,
    running: Mapping[str, Running] | None = None,
) -> KubeObjects:
    """`running`: what each service runs (version, and color for blue-green); the matrix's
    initial version on blue for a service it does not name."""
    e = matrix.environment(env)
    project = matrix.project
    ns = namespace(project, env)
    maps = config_maps(matrix, env, template)
    workloads, secret_keys = _workloads(matrix, env, maps, running)
    variables = cloud_variables(matrix, env)
    ingress_class = str(variables.get(INGRESS_CLASS_VARIABLE) or "") or None
    manifests: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {
                    **labels(project, env),
                    "pod-security.kubernetes.io/enforce": "baseline",
                },
            },
        }
    ]
    level = e.security.network_policies if e.security else "disabled"
    if is_on(level):
        dbs = e.databases
        ports = [p for p, on in ((5432, dbs and dbs.primary), (6379, dbs and dbs.cache)) if on]
        manifests += network_policies(
            ns,
            workloads,
            project=project,
            env=env,
            egress=level == "enabled",
            scraped=monitoring_values(e.monitoring, project=project, env=env, ns=ns) is not None,
            vpc_cidr=e.networking.vpc_cidr if e.networking else None,
            data_ports=ports,
            https_out=e.storage is not None,
            from_ingress=ingress_class is not None,
        )
    for cm in sorted(maps, key=lambda m: m.name):
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": cm.name, "namespace": ns, "labels": labels(project, env)},
                "data": dict(cm.data),
            }
        )
    strategy = matrix.strategy_for(env).primary
    env_from = ["app-config"] if any(cm.name == "app-config" for cm in maps) else []
    objects = TrackObjects()
    for w in workloads:
        if w.version is None:  # the frontend is no matrix service: no release moves it
            objects.services.append(service(ns, w, project=project, env=env))
            objects.deployments.append(
                deployment(
                    ns, w, project=project, env=env, recreate=strategy == "recreate", env_from=[]
                )
            )
            continue
        mine = track_objects(
            ns,
            w,
            strategy=strategy,
            color=w.color,
            project=project,
            env=env,
            env_from=env_from,
            ingress_class=ingress_class,
            domain=str(variables["DOMAIN"]),
        )
        objects.services += mine.services
        objects.deployments += mine.deployments
        objects.ingresses += mine.ingresses
    manifests += objects.services + objects.ingresses + objects.deployments
    manifests += [
        disruption_budget(ns, w, project=project, env=env) for w in workloads if w.replicas > 1
    ]
    return KubeObjects(ns, manifests, workloads, secret_keys)


def object_name(manifest: dict[str, Any]) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"
