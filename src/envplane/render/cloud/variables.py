"""Template variables on the cloud target: the shared ones plus where things are in AWS.

POSTGRES_HOST and REDIS_HOST are `${tf:...}` placeholders (the RDS and ElastiCache hosts are
known only after Terraform ran); `<SERVICE>_URL` is the in-cluster Service; PUBLIC_URL is
https://<env>.<DOMAIN>, DOMAIN a matrix variable defaulting to `<project>.example.com`."""

from __future__ import annotations

from typing import Any

from envplane.matrix import Matrix
from envplane.render.cloud.names import k8s_name, placeholder
from envplane.render.variables import base_variables, env_var_name


def default_domain(project: str) -> str:
    return f"{project}.example.com"


def cloud_variables(matrix: Matrix, env: str) -> dict[str, Any]:
    variables = base_variables(matrix, env)
    e = matrix.environment(env)
    primary = e.databases.primary if e.databases else None
    cache = e.databases.cache if e.databases else None
    domain = str(variables.get("DOMAIN") or default_domain(matrix.project))
    variables.update(
        DOMAIN=domain,
        POSTGRES_HOST=placeholder("rds_address") if primary else "",
        POSTGRES_PORT=5432,
        POSTGRES_SSL="true",
        REDIS_HOST=placeholder("redis_address") if cache else "",
        REDIS_PORT=6379,
        REDIS_SSL="true",
        LISTEN="80",
        STATIC_ROOT="/usr/share/nginx/html",
        PUBLIC_URL=f"https://{env}.{domain}",
        PUBLIC_WS_URL=f"wss://{env}.{domain}",
    )
    for name in matrix.services_for(env):
        variables[f"{env_var_name(name)}_URL"] = f"http://{k8s_name(name)}-service:80"
    return variables
